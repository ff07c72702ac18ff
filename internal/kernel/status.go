package kernel

import (
	"strconv"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sched"
)

// Status reports the kernel's cores and queues.
func (k *Kernel) Status() api.CoreStatus {
	k.mu.Lock()
	loads := k.sched.Loads()
	queued := map[string]int{}
	for m := sched.Module(0); m < sched.NumModules; m++ {
		queued[m.String()] = k.sched.Queued(m)
	}
	closing := k.closing
	states := make([]string, len(k.cores))
	for i, e := range k.cores {
		states[i] = e.health.state()
	}
	k.mu.Unlock()

	st := api.CoreStatus{
		Status:    "running",
		Scheduler: k.opts.Policy,
		Modules:   map[string]string{},
		Queued:    queued,
		Running:   map[string]int{},
	}
	if closing {
		st.Status = "shutting_down"
	}
	for m := sched.Module(0); m < sched.NumModules; m++ {
		st.Modules[m.String()] = "not enabled"
		if k.Enabled(m) {
			st.Modules[m.String()] = "enabled"
		}
	}
	for _, l := range loads {
		st.Running[l.Spec.Module.String()] += l.Inflight
		if l.Spec.Module != sched.LLM {
			continue
		}
		i := int(l.Spec.ID)
		e := k.cores[i]
		st.LLMCores = append(st.LLMCores, api.LLMCoreStatus{
			ID: coreName(e), Name: e.cfg.Model, Backend: e.cfg.Backend, Healthy: !l.Down,
			Inflight: l.Inflight, TokensInflight: l.Tokens,
			MaxInflight: e.capacity.MaxInflight, MaxTokensInflight: e.capacity.MaxTokens,
			Completed: e.completed.Load(), Failed: e.failed.Load(),
			Retried: e.retried.Load(), State: states[i], Held: l.Held,
		})
	}
	return st
}

// LLMs lists the served models in AIOS's /core/llms/list shape.
func (k *Kernel) LLMs() api.LLMList {
	var out api.LLMList
	for _, m := range k.Models() {
		cores := k.byModel[m]
		out.LLMs = append(out.LLMs, api.LLMListEntry{
			Name: m, Backend: cores[0].cfg.Backend, Hostname: cores[0].cfg.Hostname, Cores: len(cores),
		})
	}
	return out
}

func coreName(e *coreEntry) string {
	return e.cfg.Backend + "/" + e.cfg.Model + "#" + strconv.Itoa(int(e.id))
}
