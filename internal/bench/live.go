package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/bench/metrics"
	"github.com/aios-go/aios/internal/bench/workload"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm/openai"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/server"
)

const liveModel = "bench-model"

// RunLive runs progs under arm over real HTTP: simulated engines served as vLLM servers
// on loopback, agents as goroutines speaking the OpenAI API — to the engines themselves
// (direct) or to an in-process kernel whose openai cores call the same engines. Time
// runs speed times faster than the wall clock; reported times are simulated time.
func RunLive(ctx context.Context, setup Setup, arm Arm, progs []workload.Program, agents int, speed float64) (Result, error) {
	setup.defaults()
	if setup.Belady {
		return Result{}, ErrBeladyLive
	}
	if arm.AEG {
		return Result{}, ErrAEGLive
	}
	if arm.Swap {
		return Result{}, ErrSwapLive
	}
	var engines []*sim.Server
	var urls []string
	defer func() {
		for _, e := range engines {
			e.Close()
		}
	}()
	var servers []*httptest.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for i := 0; i < setup.Cores; i++ {
		e, err := sim.NewServer(sim.Config{Profile: setup.Profile, Mode: setup.Mode, Speed: speed, Model: liveModel,
			KVOffloadGiB: setup.KVOffloadGiB})
		if err != nil {
			return Result{}, err
		}
		engines = append(engines, e)
		ts := httptest.NewServer(e.Handler())
		servers = append(servers, ts)
		urls = append(urls, ts.URL)
	}
	targets := urls
	if arm.Kernel {
		url, stop, err := startKernel(setup, arm, urls)
		if err != nil {
			return Result{}, err
		}
		defer stop()
		targets = []string{url}
	}
	l := &liveRun{setup: setup, arm: arm, speed: speed, targets: targets, epoch: time.Now(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}}}
	defer l.client.CloseIdleConnections()

	results := make([]metrics.Program, len(progs))
	var wg sync.WaitGroup
	if agents > 0 {
		next := make(chan int, len(progs))
		for i := range progs {
			next <- i
		}
		close(next)
		for a := 0; a < agents; a++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if ctx.Err() != nil {
						return
					}
					results[i] = l.runProgram(ctx, &progs[i], "agent-"+strconv.Itoa(a))
				}
			}()
		}
	} else {
		for i := range progs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !l.sleep(ctx, progs[i].Arrival) {
					return
				}
				results[i] = l.runProgram(ctx, &progs[i], progs[i].Agent)
			}()
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	var res Result
	var first, last time.Duration
	for i, p := range results {
		if i == 0 || p.Arrival < first {
			first = p.Arrival
		}
		last = max(last, p.Finish)
	}
	res.Programs = results
	res.Calls = l.calls
	res.Span = last - first
	for _, e := range engines {
		res.addEngine(e.Live().Stats())
	}
	return res, nil
}

// startKernel runs a kernel whose cores are the engines, behind its HTTP server.
func startKernel(setup Setup, arm Arm, urls []string) (string, func(), error) {
	p, err := sim.LookupProfile(setup.Profile)
	if err != nil {
		return "", nil, err
	}
	var cores []kernel.CoreConfig
	for _, u := range urls {
		// The simulator takes the retention hints, so +ttl arms pass them on, the end of
		// a session included, as the kernel built from a configuration with
		// kv_retention does (boot wraps its cores the same way).
		c, err := openai.New(openai.Config{Name: liveModel, BaseURL: u, Resume: true, Retention: arm.TTL,
			MaxInflight: setup.maxInflight(p), MaxTokens: p.NumBlocks() * p.BlockSize})
		if err != nil {
			return "", nil, err
		}
		cores = append(cores, kernel.CoreConfig{Model: liveModel, Backend: "vllm", Core: c.WithHints()})
	}
	opts := kernel.Options{Policy: arm.Policy, TimeSlice: setup.TimeSlice, MaxBypass: setup.MaxBypass,
		Routing: sched.RoutingConfig{Mode: setup.Routing}, Retention: arm.TTL, PolicyConfig: policyConfig(setup, arm)}
	if arm.WS {
		ws := wsConfig(setup, arm)
		opts.WorkingSet = &ws
	}
	k, err := kernel.New(opts, cores)
	if err != nil {
		return "", nil, err
	}
	ts := httptest.NewServer(server.New(k, server.Options{MaxBodyBytes: 64 << 20}).Handler())
	return ts.URL, func() {
		ts.Close()
		_ = k.Shutdown(context.Background())
	}, nil
}

type liveRun struct {
	setup   Setup
	arm     Arm
	speed   float64
	targets []string
	epoch   time.Time
	client  *http.Client
	mu      sync.Mutex
	rr      int
	calls   []metrics.Call
}

// sim converts a wall-clock instant to simulated time since the run began.
func (l *liveRun) simNow() time.Duration {
	return time.Duration(float64(time.Since(l.epoch)) * l.speed)
}

func (l *liveRun) simDur(d time.Duration) time.Duration { return time.Duration(float64(d) * l.speed) }

// sleep waits until simulated instant at; false if ctx ended first.
func (l *liveRun) sleep(ctx context.Context, at time.Duration) bool {
	d := time.Duration(float64(at)/l.speed) - time.Since(l.epoch)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *liveRun) runProgram(ctx context.Context, p *workload.Program, agent string) metrics.Program {
	out := metrics.Program{ID: p.ID, Agent: agent, Arrival: l.simNow()}
	msgs := make([][]api.Message, len(p.Steps))
	system := []api.Message{{Role: "system", Content: api.Content(words(hashKey("system", p.Kind), p.System))}}
	base := func(i int) []api.Message {
		if par := p.Steps[i].Parent; par >= 0 {
			return msgs[par]
		}
		return system
	}
	// A program that uses tools offers all of them on every call, as agents do: the
	// engine's template puts the tools right after the system prompt, so a list that
	// changed from call to call would break the cached prefix.
	tools := programTools(p)
	done := make([]chan struct{}, len(p.Steps))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var mu sync.Mutex
	failed := false
	var wg sync.WaitGroup
	for i := range p.Steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, d := range p.Steps[i].Deps {
				<-done[d]
			}
			mu.Lock()
			skip := failed
			mu.Unlock()
			if skip || ctx.Err() != nil {
				return
			}
			s := p.Steps[i]
			if s.Kind == workload.Tool {
				mu.Lock()
				msgs[i] = base(i)
				out.InTools += s.ToolTime
				mu.Unlock()
				l.sleep(ctx, l.simNow()+s.ToolTime)
				return
			}
			mu.Lock()
			prev := base(i)
			in := append(prev[:len(prev):len(prev)], inputMessage(prev,
				words(hashKey("input", strconv.Itoa(p.ID), strconv.Itoa(i)), s.Input)))
			mu.Unlock()
			// A call a tool step follows ends in a call of that tool; the others answer in
			// text. Either way it generates exactly its output tokens (ignore_eos).
			choice := json.RawMessage(`"none"`)
			if tool, ok := nextTool(p, i); ok {
				choice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": tool}})
			}
			if len(tools) == 0 {
				choice = nil
			}
			reply, m := l.call(ctx, p, agent, in, tools, choice, max(s.Output, 1))
			mu.Lock()
			defer mu.Unlock()
			out.Queued += m.Queued
			out.Executing += m.Latency - m.Queued
			if m.Failed {
				failed = true
				return
			}
			msgs[i] = append(in, reply)
		}()
	}
	wg.Wait()
	out.Finish = l.simNow()
	out.Failed = failed
	if l.arm.Kernel {
		// Tell the kernel the program is done, so its working set frees its place now.
		req, _ := http.NewRequestWithContext(ctx, "DELETE", l.targets[0]+"/sessions/"+session(agent, p.ID), nil)
		if resp, err := l.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	return out
}

// programTools are function tools named after the tools a program's steps use, sorted.
func programTools(p *workload.Program) []api.Tool {
	seen := map[string]bool{}
	var names []string
	for _, s := range p.Steps {
		if s.Kind == workload.Tool && !seen[s.Tool] {
			seen[s.Tool] = true
			names = append(names, s.Tool)
		}
	}
	sort.Strings(names)
	out := make([]api.Tool, len(names))
	for i, n := range names {
		out[i] = api.Tool{Type: "function", Function: api.FunctionDef{Name: n, Parameters: json.RawMessage(`{"type":"object","properties":{"input":{"type":"string"}}}`)}}
	}
	return out
}

// nextTool names the tool step that continues from LLM step i, if one does.
func nextTool(p *workload.Program, i int) (string, bool) {
	for _, s := range p.Steps {
		if s.Kind == workload.Tool && s.Parent == i {
			return s.Tool, true
		}
	}
	return "", false
}

// inputMessage is a step's new input after the conversation prev: the tool's result when
// prev ends in a tool call, else a user message.
func inputMessage(prev []api.Message, text string) api.Message {
	if n := len(prev); n > 0 && len(prev[n-1].ToolCalls) > 0 {
		return api.Message{Role: "tool", ToolCallID: prev[n-1].ToolCalls[0].ID, Content: api.Content(text)}
	}
	return api.Message{Role: "user", Content: api.Content(text)}
}

func session(agent string, prog int) string { return agent + "-" + strconv.Itoa(prog) }

// call makes one LLM call, streaming, retrying refusals with backoff as agent frameworks
// do, and returns the assistant's message.
func (l *liveRun) call(ctx context.Context, p *workload.Program, agent string, msgs []api.Message, tools []api.Tool, choice json.RawMessage, output int) (api.Message, metrics.Call) {
	m := metrics.Call{Program: p.ID, Agent: agent}
	body, _ := json.Marshal(api.ChatCompletionRequest{Model: liveModel, Messages: msgs, MaxTokens: &output,
		Tools: tools, ToolChoice: choice,
		Stream: true, StreamOptions: &api.StreamOptions{IncludeUsage: true}, IgnoreEOS: true})
	start := l.simNow()
	retry := agentRetry(l.setup, l.arm)
	for attempt := 0; ; attempt++ {
		l.mu.Lock()
		url := l.targets[engineFor(l.arm, session(agent, p.ID), l.rr, len(l.targets))]
		l.rr++
		l.mu.Unlock()
		reply, again, err := l.stream(ctx, url, agent, p.ID, body, &m, start)
		if err == nil {
			m.Latency = l.simNow() - start
			l.record(m)
			return reply, m
		}
		if !again || attempt+1 >= retry.Attempts || ctx.Err() != nil {
			m.Failed = true
			m.Latency = l.simNow() - start
			l.record(m)
			return api.Message{}, m
		}
		m.Retries++
		l.sleep(ctx, l.simNow()+retry.delay(attempt))
	}
}

func (l *liveRun) record(m metrics.Call) {
	l.mu.Lock()
	l.calls = append(l.calls, m)
	l.mu.Unlock()
}

// stream posts one streaming request and reads it to the end.
func (l *liveRun) stream(ctx context.Context, url, agent string, prog int, body []byte, m *metrics.Call, start time.Duration) (api.Message, bool, error) {
	none := api.Message{}
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.HeaderAgent, agent)
	req.Header.Set(api.HeaderSession, session(agent, prog))
	resp, err := l.client.Do(req)
	if err != nil {
		return none, true, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		retry := resp.StatusCode == 429 || resp.StatusCode >= 500
		return none, retry, fmt.Errorf("status %d", resp.StatusCode)
	}
	var text strings.Builder
	var call *api.ToolCall
	first := true
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	complete := false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			complete = true
			break
		}
		var c struct {
			api.ChatCompletionChunk
			Error *api.OpenAIErrorDetail `json:"error"`
		}
		if json.Unmarshal([]byte(data), &c) != nil || c.Error != nil {
			return none, true, fmt.Errorf("stream error: %s", data)
		}
		for _, ch := range c.Choices {
			got := ch.Delta.Content != nil && *ch.Delta.Content != "" || len(ch.Delta.ToolCalls) > 0
			if got && first {
				first = false
				m.TTFT = l.simNow() - start
			}
			if ch.Delta.Content != nil {
				text.WriteString(*ch.Delta.Content)
			}
			for _, tc := range ch.Delta.ToolCalls {
				if call == nil {
					call = &api.ToolCall{Type: "function"}
				}
				if tc.ID != "" {
					call.ID = tc.ID
				}
				if tc.Function.Name != "" {
					call.Function.Name = tc.Function.Name
				}
				call.Function.Arguments += tc.Function.Arguments
			}
		}
		if c.Usage != nil {
			m.PromptTokens += c.Usage.PromptTokens
			m.OutputTokens = c.Usage.CompletionTokens
			if c.Usage.PromptTokensDetails != nil {
				m.CachedTokens += c.Usage.PromptTokensDetails.CachedTokens
			}
		}
	}
	if !complete {
		return none, true, fmt.Errorf("stream ended early")
	}
	// The kernel sends the time the call queued in it as a trailer of the stream, read
	// once the body is at its end; an engine sends none.
	_, _ = io.Copy(io.Discard, resp.Body)
	if q, err := strconv.ParseFloat(resp.Trailer.Get(server.HeaderQueueMs), 64); err == nil {
		m.Queued += l.simDur(time.Duration(q * float64(time.Millisecond)))
	}
	reply := api.Message{Role: "assistant", Content: api.Content(text.String())}
	if call != nil {
		reply.ToolCalls = []api.ToolCall{*call}
	}
	return reply, false, nil
}

// words is a deterministic text of n one-token words named by key. Each word is three
// letters: letters only and at most 8 bytes, which the engine's tokenizer reads as one
// token (a word mixing letters and digits would be cut in two, doubling the prompt the
// workload asked for), and, with its space, the 4 bytes per token the kernel's estimate
// (llm.EstimateTokens) assumes, so admission sees the size the engine will hold.
func words(key uint64, n int) string {
	var sb strings.Builder
	sb.Grow(n * 4)
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(' ')
		}
		x := mix(key, i) % (26 * 26 * 26)
		for j := 0; j < 3; j++ {
			sb.WriteByte(byte('a' + x%26))
			x /= 26
		}
	}
	return sb.String()
}
