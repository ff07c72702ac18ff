package kernel

import (
	"time"

	"github.com/aios-go/aios/internal/llm/enginemetrics"
)

// watchEngine holds new calls back from core e while its engine's /metrics say it is
// saturated, so queued work waits in the kernel, in the kernel's policy order, instead
// of in the engine's FCFS queue. Until the first good scrape, and whenever the metrics
// go stale, the core counts as saturated.
func (k *Kernel) watchEngine(e *coreEntry, url string, interval time.Duration, p enginemetrics.Policy) {
	sc := enginemetrics.NewScraper(url, interval, p)
	sc.OnChange = func(saturated bool) {
		k.mu.Lock()
		k.sched.SetHeld(e.id, saturated)
		k.mu.Unlock()
		k.poke()
	}
	k.sched.SetHeld(e.id, true)
	k.bg.wg.Add(1)
	go func() {
		defer k.bg.wg.Done()
		sc.Run(k.bg.ctx)
	}()
}
