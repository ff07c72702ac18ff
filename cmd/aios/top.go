package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/aios-go/aios/api"
)

func topCmd() *cobra.Command {
	var o topOptions
	var adminKey *string
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show a running kernel's queues, cores and agents in the terminal",
		Long: `Show what a running kernel is doing, as its dashboard at /ui does: each module's
queue, each LLM core's calls and KV cache, and each agent's calls in flight and tokens.
It reads GET /ui/api/state every --interval. On a terminal it redraws in place; piped, it
prints one plain frame per interval, and with --once a single frame. With access.auth
on, it needs an admin key (--admin-key or $AIOS_ADMIN_KEY).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.out = cmd.OutOrStdout()
			if f, ok := o.out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				o.size = func() (int, int) {
					w, h, err := term.GetSize(int(f.Fd()))
					if err != nil {
						return 0, 0
					}
					return w, h
				}
			}
			o.adminKey = *adminKey
			return runTop(ctx, o)
		},
	}
	adminKey = adminKeyFlag(cmd)
	cmd.Flags().StringVar(&o.url, "url", defaultKernelURL(), "URL of the running kernel")
	cmd.Flags().DurationVar(&o.interval, "interval", time.Second, "time between frames")
	cmd.Flags().BoolVar(&o.once, "once", false, "print one frame and exit")
	return cmd
}

type topOptions struct {
	url      string
	adminKey string // sent as the bearer token: /ui/api/state is an admin route
	interval time.Duration
	once     bool
	out      io.Writer
	// size reports the terminal's columns and rows; nil when out is not a terminal,
	// and then frames are plain text, one after another.
	size func() (cols, rows int)
}

// ANSI: cursor home, clear the screen.
const clearScreen = "\x1b[H\x1b[2J"

func runTop(ctx context.Context, o topOptions) error {
	if o.interval <= 0 {
		return errors.New("top: --interval must be positive")
	}
	hc := &http.Client{Timeout: max(o.interval, 5*time.Second)}
	defer hc.CloseIdleConnections()
	url := strings.TrimRight(o.url, "/")
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for {
		st, err := fetchTopState(ctx, hc, url, o.adminKey)
		var keyErr *adminKeyError
		if err != nil && (o.once || ctx.Err() != nil || errors.As(err, &keyErr)) {
			if ctx.Err() != nil {
				return nil
			}
			return err // a refused key stays refused: no point redrawing the refusal
		}
		var frame string
		cols, rows := 0, 0
		if o.size != nil {
			cols, rows = o.size()
		}
		if err != nil {
			frame = fmt.Sprintf("aios top — %s\n\n%v\nretrying every %v\n", url, err, o.interval)
		} else {
			frame = renderTop(st, url, cols, rows)
		}
		if o.size != nil {
			frame = clearScreen + frame
		} else if !o.once {
			frame += "\n"
		}
		if _, err := io.WriteString(o.out, frame); err != nil {
			return err
		}
		if o.once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func fetchTopState(ctx context.Context, hc *http.Client, url, adminKey string) (api.DashboardState, error) {
	var st api.DashboardState
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/ui/api/state", nil)
	if err != nil {
		return st, fmt.Errorf("top: %w", err)
	}
	setAdminKey(req, adminKey)
	resp, err := hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("top: cannot reach the kernel at %s: %w (is it running? start it with \"aios serve\")", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if err := adminAuthError("top: GET "+url+"/ui/api/state", resp.StatusCode, b, adminKey); err != nil {
			return st, err
		}
		return st, fmt.Errorf("top: GET %s/ui/api/state: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("top: GET %s/ui/api/state: %w", url, err)
	}
	return st, nil
}

// renderTop draws one frame: a header, the queues, the cores and the agents. cols, when
// positive, cuts lines to the terminal's width; rows, when positive, lists only as many
// agents as fit (those with calls in flight first) and says how many it left out.
func renderTop(st api.DashboardState, url string, cols, rows int) string {
	var lines []string
	add := func(block string) { lines = append(lines, strings.Split(strings.TrimRight(block, "\n"), "\n")...) }
	now := time.UnixMicro(int64(st.TimeMs * 1e3))
	up := time.Duration((st.TimeMs - st.StartedMs) * float64(time.Millisecond)).Round(time.Second)
	add(fmt.Sprintf("aios top — %s  %s  scheduler %s  up %v  tokens %s  %s",
		url, st.Status, st.Scheduler, up, thousands(st.Usage.TotalTokens), now.Format("15:04:05")))
	if ws := st.WorkingSet; ws != nil {
		add(fmt.Sprintf("working set: %d programs active, %s tokens; %d admitted, %d suspended",
			ws.Active, thousands(int64(ws.Tokens)), ws.Admissions, ws.Suspensions))
	}
	add("")
	mods := [][]string{{"MODULE", "QUEUED", "RUNNING"}}
	for _, m := range st.Modules {
		name := m.Name
		if !m.Enabled {
			name += " (off)"
		}
		mods = append(mods, []string{name, strconv.Itoa(m.Queued), strconv.Itoa(m.Running)})
	}
	add(columns(mods, "lrr"))
	add("")
	cores := [][]string{{"CORE", "STATE", "IN FLIGHT", "KV TOKENS", "KV"}}
	for _, c := range st.Cores {
		state := c.State
		if state == "" {
			state = "ok"
		}
		kv, bar := thousands(int64(c.TokensInflight)), "-"
		if c.MaxTokensInflight > 0 {
			kv += " / " + thousands(int64(c.MaxTokensInflight))
			pct := 100 * float64(c.TokensInflight) / float64(c.MaxTokensInflight)
			bar = kvBar(pct) + fmt.Sprintf(" %3.0f%%", pct)
		}
		cores = append(cores, []string{c.ID, state, strconv.Itoa(c.Inflight) + " / " + limit(c.MaxInflight), kv, bar})
	}
	add(columns(cores, "llrrl"))
	add("")

	inflight := map[string]map[string]int{} // agent → module → calls
	for _, c := range st.InFlight {
		if inflight[c.Agent] == nil {
			inflight[c.Agent] = map[string]int{}
		}
		inflight[c.Agent][c.Module]++
	}
	agents := slices.Clone(st.Agents)
	slices.SortStableFunc(agents, func(a, b api.DashboardAgent) int {
		return cmp.Or(cmp.Compare(b.Queued+b.Running, a.Queued+a.Running), cmp.Compare(b.Usage.TotalTokens, a.Usage.TotalTokens), cmp.Compare(a.Name, b.Name))
	})
	left := 0
	if rows > 0 {
		room := max(rows-len(lines)-2, 1) // the agents' header, and a line for what is left out
		if len(agents) > room {
			left = len(agents) - room
			agents = agents[:room]
		}
	}
	if len(agents) == 0 {
		add("no agent has called the kernel yet")
	} else {
		t := [][]string{{"AGENT", "PROGRAMS", "QUEUED", "RUNNING", "LLM CALLS", "TOKENS", "IN FLIGHT"}}
		for _, a := range agents {
			t = append(t, []string{a.Name, strconv.Itoa(len(a.Programs)), strconv.Itoa(a.Queued), strconv.Itoa(a.Running),
				thousands(a.Usage.Calls), thousands(a.Usage.TotalTokens), byModule(inflight[a.Name])})
		}
		add(columns(t, "lrrrrrl"))
	}
	if left > 0 {
		add(fmt.Sprintf("… and %d more agents", left))
	}
	if cols > 0 {
		for i, l := range lines {
			if r := []rune(l); len(r) > cols {
				lines[i] = string(r[:cols])
			}
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// columns lays rows out in columns two spaces apart; align has an 'l' (left) or 'r'
// (right) per column. Widths count runes, so "∞" takes one.
func columns(rows [][]string, align string) string {
	width := make([]int, len(align))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var sb strings.Builder
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if align[i] == 'r' {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		sb.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return sb.String()
}

// byModule says "llm 2, tool 1", modules in the kernel's order.
func byModule(n map[string]int) string {
	var parts []string
	for _, m := range []string{"llm", "memory", "storage", "tool"} {
		if n[m] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", m, n[m]))
		}
	}
	return strings.Join(parts, ", ")
}

func kvBar(pct float64) string {
	const width = 10
	full := min(max(int(pct/100*width+0.5), 0), width)
	if full == 0 && pct > 0 {
		full = 1 // something is there
	}
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + "]"
}

func limit(n int) string {
	if n <= 0 {
		return "∞"
	}
	return strconv.Itoa(n)
}

// thousands writes n with commas: 448,304.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
