package config

import (
	"fmt"
	"github.com/aios-go/aios/internal/access"
	"slices"
	"strings"

	"github.com/knadh/koanf/v2"
)

// Quota is one scope's limits in access.quotas (docs/security.md#quotas): set at every
// start of the kernel, over whatever the admin API set for that scope before. Exactly
// one of Agent and Tenant names the scope; a limit of 0 is none.
type Quota struct {
	Agent         string `koanf:"agent"`
	Tenant        string `koanf:"tenant"`
	TokensPerHour int64  `koanf:"tokens_per_hour"`
	TokensPerDay  int64  `koanf:"tokens_per_day"`
	RPM           int    `koanf:"rpm"`
	TPM           int    `koanf:"tpm"`
	MaxConcurrent int    `koanf:"max_concurrent"`
}

// quotaFields are the keys of a quota entry; any other is a typo that would otherwise
// leave a limit silently unset.
var quotaFields = []string{"agent", "tenant", "tokens_per_hour", "tokens_per_day", "rpm", "tpm", "max_concurrent"}

// Scope says what the quota limits, as the admin API names it: "agent" or "tenant",
// and the name.
func (q Quota) Scope() (kind, name string) {
	if q.Agent != "" {
		return "agent", q.Agent
	}
	return "tenant", q.Tenant
}

// checkQuotas refuses quotas that cannot be applied, naming the entry and field at
// fault: unknown fields, a scope that is not exactly one agent or one tenant, a name the
// access manager would refuse, a negative limit, a scope given twice, or quotas with
// authentication off (nothing would enforce them).
func (a *Access) checkQuotas(k *koanf.Koanf) []error {
	errs := unknownEntryFields(k, "access.quotas", quotaFields)
	seen := map[string]int{}
	for i, q := range a.Quotas {
		at := fmt.Sprintf("access.quotas[%d]", i)
		if (q.Agent == "") == (q.Tenant == "") {
			errs = append(errs, fmt.Errorf("%s: give exactly one of agent or tenant (the scope the limits apply to)", at))
			continue
		}
		kind, name := q.Scope()
		at += fmt.Sprintf(" (%s %s)", kind, name)
		if err := access.ValidName(kind, name, kind == "agent"); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
		}
		for _, l := range []struct {
			field string
			v     int64
		}{{"tokens_per_hour", q.TokensPerHour}, {"tokens_per_day", q.TokensPerDay},
			{"rpm", int64(q.RPM)}, {"tpm", int64(q.TPM)}, {"max_concurrent", int64(q.MaxConcurrent)}} {
			if l.v < 0 {
				errs = append(errs, fmt.Errorf("%s: %s %d must not be negative (0 means no limit)", at, l.field, l.v))
			}
		}
		if j, dup := seen[kind+" "+name]; dup {
			errs = append(errs, fmt.Errorf("%s: the same scope as access.quotas[%d]; give each agent or tenant once", at, j))
		}
		seen[kind+" "+name] = i
	}
	if len(a.Quotas) > 0 && !a.Auth {
		errs = append(errs, fmt.Errorf("access.quotas are enforced by the access manager, which is off: set access.auth: true, or remove access.quotas"))
	}
	return errs
}

// unknownEntryFields reports the keys of each entry of the list at key that are not
// among fields: typos koanf would otherwise drop without a word.
func unknownEntryFields(k *koanf.Koanf, key string, fields []string) []error {
	var errs []error
	raw, _ := k.Get(key).([]any)
	for i, r := range raw {
		m, _ := r.(map[string]any) // anything else failed to decode already
		for f := range m {
			if !slices.Contains(fields, f) {
				errs = append(errs, fmt.Errorf("%s[%d]: unknown field %q; the fields are %s", key, i, f, strings.Join(fields, ", ")))
			}
		}
	}
	return errs
}
