package kernel

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
