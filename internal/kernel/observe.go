package kernel

import (
	"maps"
	"sync"
	"sync/atomic"
)

// WorkingSetStats are working-set admission's counters (sched.WorkingSet).
type WorkingSetStats struct {
	Enabled bool
	// Active programs now, and the context tokens they hold between them.
	Active, Tokens int
	// Admissions and Suspensions so far.
	Admissions, Suspensions int
}

// WorkingSetStats reports working-set admission's counters; zero, not Enabled, when it is
// off.
func (k *Kernel) WorkingSetStats() WorkingSetStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.opts.WorkingSet == nil {
		return WorkingSetStats{}
	}
	st := WorkingSetStats{Enabled: true}
	st.Active, st.Tokens, st.Admissions, st.Suspensions = k.sched.WorkingSetStats()
	return st
}

// endObservers are the functions besides Options.OnEnd that hear of each ended syscall
// (ObserveEnds), copied on write so the end path reads them without a lock.
type endObservers struct {
	mu   sync.Mutex
	next int
	set  atomic.Pointer[map[int]func(*Syscall)]
}

// ObserveEnds has f called, as Options.OnEnd is, for each syscall that ends from now on,
// until the returned function is called. Options.OnEnd takes one function fixed at New;
// this lets readers that come and go (a dashboard's event stream) listen beside it. f
// runs on the path that ends calls and must not block.
func (k *Kernel) ObserveEnds(f func(*Syscall)) (stop func()) {
	o := &k.observers
	o.mu.Lock()
	defer o.mu.Unlock()
	id := o.next
	o.next++
	o.replaceLocked(func(m map[int]func(*Syscall)) { m[id] = f })
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.replaceLocked(func(m map[int]func(*Syscall)) { delete(m, id) })
	}
}

func (o *endObservers) replaceLocked(change func(map[int]func(*Syscall))) {
	m := map[int]func(*Syscall){}
	if old := o.set.Load(); old != nil {
		maps.Copy(m, *old)
	}
	change(m)
	o.set.Store(&m)
}

// observeEnd tells Options.OnEnd and every observer that sc ended. Called once per
// syscall, outside the kernel's lock.
func (k *Kernel) observeEnd(sc *Syscall) {
	if k.opts.OnEnd != nil {
		k.opts.OnEnd(sc)
	}
	if m := k.observers.set.Load(); m != nil {
		for _, f := range *m {
			f(sc)
		}
	}
}
