package config

import (
	"fmt"
	"time"

	"github.com/knadh/koanf/v2"

	"github.com/aios-go/aios/internal/access"
)

// SLO is one entry of scheduler.slo: an agent's or a tenant's service-level
// objectives (docs/scheduling.md#slo). Exactly one of Agent and Tenant names the scope;
// TCT bounds each of its programs from first call to last, TTFT each call's wait for
// its first token. At least one is set.
type SLO struct {
	Agent  string        `koanf:"agent"`
	Tenant string        `koanf:"tenant"`
	TCT    time.Duration `koanf:"tct"`
	TTFT   time.Duration `koanf:"ttft"`
}

// sloFields are the keys of an entry; any other is a typo that would leave an
// objective silently unset.
var sloFields = []string{"agent", "tenant", "tct", "ttft"}

// checkSLOs refuses objectives that cannot work, naming the entry at fault: unknown
// fields, a scope that is not exactly one agent or one tenant, no objective or one
// that is not a positive duration, a scope given twice, tenant objectives without the
// access manager (which knows each agent's tenant), and objectives under a policy that
// does not order by deadline.
func (s *Scheduler) checkSLOs(k *koanf.Koanf, auth bool) []error {
	errs := unknownEntryFields(k, "scheduler.slo", sloFields)
	seen := map[string]int{}
	for i, o := range s.SLO {
		at := fmt.Sprintf("scheduler.slo[%d]", i)
		if (o.Agent == "") == (o.Tenant == "") {
			errs = append(errs, fmt.Errorf("%s: give exactly one of agent or tenant (whose calls the objectives apply to)", at))
			continue
		}
		kind, name := "agent", o.Agent
		if o.Tenant != "" {
			kind, name = "tenant", o.Tenant
		}
		at += fmt.Sprintf(" (%s %s)", kind, name)
		if err := access.ValidName(kind, name, kind == "agent"); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
		}
		switch {
		case o.TCT < 0 || o.TTFT < 0:
			errs = append(errs, fmt.Errorf("%s: tct %v and ttft %v must be positive durations", at, o.TCT, o.TTFT))
		case o.TCT == 0 && o.TTFT == 0:
			errs = append(errs, fmt.Errorf("%s: set tct, ttft or both (e.g. tct: 5m, ttft: 2s)", at))
		}
		if kind == "tenant" && !auth {
			errs = append(errs, fmt.Errorf("%s: a tenant's agents are known to the access manager, which is off: set access.auth: true, or give the agents' objectives", at))
		}
		if j, dup := seen[kind+" "+name]; dup {
			errs = append(errs, fmt.Errorf("%s: the same scope as scheduler.slo[%d]; give each agent or tenant once", at, j))
		}
		seen[kind+" "+name] = i
	}
	if len(s.SLO) > 0 && s.llmPolicy() != "slo" {
		errs = append(errs, fmt.Errorf("scheduler.slo sets deadlines that only the slo policy orders by, and the LLM policy is %q: set scheduler.policy: slo", s.llmPolicy()))
	}
	return errs
}

// llmPolicy is the LLM module's policy: its own entry's, else the scheduler's.
func (s *Scheduler) llmPolicy() string {
	if m, ok := s.Modules["llm"]; ok && m.Policy != "" {
		return m.Policy
	}
	return s.Policy
}
