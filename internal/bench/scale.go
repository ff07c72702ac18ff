package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/llm/simcore"
	"github.com/aios-go/aios/internal/sched"
)

// ScaleOptions describe a load test of one kernel process: Agents agents at once, each
// running a program of Steps LLM calls with a tool wait after each but the last,
// against Cores simulated engines, with the kernel's queues bounded at MaxQueued.
type ScaleOptions struct {
	Agents    int
	Steps     int           // LLM calls per program (default 3)
	Tool      time.Duration // simulated tool time between calls (default 2s)
	Input     int           // words each call adds to the program's context (default 200)
	Output    int           // tokens each call generates (default 30)
	Profile   string
	Cores     int
	Speed     float64 // simulated seconds per wall second (default 20)
	MaxQueued int     // the kernel's queue bound (default 1024, so backpressure engages)
	// WorkingSetTokens overrides the working set's capacity (0: the engines' own). The
	// queue bound applies to calls of programs outside the set, so a small set makes
	// the crowd meet it whatever the machine's speed.
	WorkingSetTokens int
}

// ScaleReport is what a load test measured.
type ScaleReport struct {
	Agents, Completed, Failed int
	Calls                     int64 // LLM calls that completed
	Refused429, Refused503    int64 // refusals the agents retried after Retry-After
	PeakQueued                int   // most LLM calls queued in the kernel at once
	PeakRSSMiB                float64
	Wall                      time.Duration
}

// RunScale runs the load test. Agents call the kernel in process (the syscall path every
// front end uses) and retry refusals after the Retry-After the kernel gives, as agent
// frameworks do; every program must complete.
func RunScale(ctx context.Context, o ScaleOptions) (ScaleReport, error) {
	if o.Steps <= 0 {
		o.Steps = 3
	}
	if o.Tool <= 0 {
		o.Tool = 2 * time.Second
	}
	if o.Input <= 0 {
		o.Input = 200
	}
	if o.Output <= 0 {
		o.Output = 30
	}
	if o.Profile == "" {
		o.Profile = "llama3-8b-h100"
	}
	if o.Cores <= 0 {
		o.Cores = 1
	}
	if o.Speed <= 0 {
		o.Speed = 20
	}
	if o.MaxQueued == 0 {
		o.MaxQueued = 1024
	}
	var cores []kernel.CoreConfig
	for i := 0; i < o.Cores; i++ {
		c, err := simcore.New(simcore.Config{Config: sim.Config{Profile: o.Profile, Speed: o.Speed, Model: liveModel}})
		if err != nil {
			for _, d := range cores {
				_ = d.Core.Close()
			}
			return ScaleReport{}, err
		}
		cores = append(cores, kernel.CoreConfig{Model: liveModel, Backend: "sim", Core: c})
	}
	// The kernel's defaults: working-set admission (the simulator's capacity is known).
	k, err := kernel.New(kernel.Options{Policy: sched.DefaultPolicy, MaxQueued: o.MaxQueued, WorkingSet: &sched.WorkingSet{Capacity: o.WorkingSetTokens}}, cores)
	if err != nil {
		return ScaleReport{}, err
	}
	defer func() { _ = k.Shutdown(context.Background()) }()

	rep := ScaleReport{Agents: o.Agents}
	var completed, failed, calls, r429, r503 atomic.Int64
	stop := make(chan struct{})
	var peak atomic.Int64
	var watch sync.WaitGroup
	watch.Add(1)
	go func() { // sample the kernel's queue
		defer watch.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if q := int64(k.Status().Queued["llm"]); q > peak.Load() {
					peak.Store(q)
				}
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for a := 0; a < o.Agents; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent := "agent-" + strconv.Itoa(a)
			msgs := []api.Message{{Role: "system", Content: api.Content(words(hashKey("system", "scale"), 300))}}
			for s := 0; s < o.Steps; s++ {
				msgs = append(msgs, api.Message{Role: "user", Content: api.Content(words(hashKey(agent, strconv.Itoa(s)), o.Input))})
				var res *llm.Result
				for {
					r, _, err := k.CallLLM(ctx, kernel.LLMCall{Agent: agent, Program: agent,
						Request: llm.Request{Messages: msgs, MaxTokens: o.Output, IgnoreEOS: true}})
					var ae *api.Error
					if errors.As(err, &ae) && (ae.Kind == api.PolicyQuota || ae.Kind == api.BackendOverloaded) && ctx.Err() == nil {
						if ae.Kind == api.PolicyQuota {
							r429.Add(1)
						} else {
							r503.Add(1)
						}
						time.Sleep(ae.RetryAfter)
						continue
					}
					if err != nil {
						failed.Add(1)
						return
					}
					res = r
					break
				}
				calls.Add(1)
				msgs = append(msgs, api.Message{Role: "assistant", Content: api.Content(res.Text)})
				if s < o.Steps-1 {
					time.Sleep(time.Duration(float64(o.Tool) / o.Speed))
				}
			}
			k.EndProgram(agent)
			completed.Add(1)
		}()
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	rep.Wall = time.Since(start)
	rep.Completed, rep.Failed = int(completed.Load()), int(failed.Load())
	rep.Calls, rep.Refused429, rep.Refused503 = calls.Load(), r429.Load(), r503.Load()
	rep.PeakQueued = int(peak.Load())
	rep.PeakRSSMiB = peakRSSMiB()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}

// Write prints a load test's report.
func (r ScaleReport) Write(w io.Writer) {
	fmt.Fprintf(w, "%d agents: %d programs completed, %d failed; %d LLM calls; %d refusals with 429 and %d with 503, retried after Retry-After; peak %d calls queued in the kernel; peak RSS %.0f MiB; %s wall\n",
		r.Agents, r.Completed, r.Failed, r.Calls, r.Refused429, r.Refused503, r.PeakQueued, r.PeakRSSMiB, r.Wall.Round(time.Millisecond))
}

// peakRSSMiB is the process's peak resident set (Linux's VmHWM); 0 where unknown.
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
