package telemetry

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
)

// maxPrograms bounds the programs whose root spans are held open: past it the one idle
// longest is closed early, so a kernel serving endless one-off agents holds bounded
// memory.
const maxPrograms = 16384

// program is one program's trace while it is active: the root span every syscall span of
// the program hangs under, sent when the program goes idle or the tracer shuts down.
type program struct {
	name, agent  string
	root         trace.SpanContext
	first, last  time.Time // earliest arrival, latest end of its syscalls
	calls, fails int
	in, out      int // LLM tokens
}

// programIDs derives a program's trace and root span IDs from its name and the arrival
// of its first syscall: the same inputs always give the same trace, and a program that
// comes back after going idle gets a new one.
func programIDs(name string, first time.Time) (trace.TraceID, trace.SpanID) {
	h := sha256.Sum256([]byte("aios-program:" + name + "@" + first.UTC().Format(time.RFC3339Nano)))
	var tid trace.TraceID
	var sid trace.SpanID
	copy(tid[:], h[:16])
	copy(sid[:], h[16:24])
	return tid, sid
}

// programFor returns the program's root span context, opening the program at its first
// syscall, and counts the syscall in it.
func (t *Tracer) programFor(name, agent string, arrival, end time.Time, failed bool, in, out int) (trace.SpanContext, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return trace.SpanContext{}, false
	}
	p := t.programs[name]
	if p == nil {
		if len(t.programs) >= maxPrograms {
			t.closeOldestLocked()
		}
		tid, sid := programIDs(name, arrival)
		p = &program{name: name, agent: agent, first: arrival, last: end,
			root: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})}
		t.programs[name] = p
	}
	p.first = minTime(p.first, arrival)
	p.last = maxTime(p.last, end)
	p.calls++
	if failed {
		p.fails++
	}
	p.in += in
	p.out += out
	return p.root, true
}

// closeOldestLocked sends the root span of the program idle longest. Called under t.mu
// when maxPrograms are open; the scan is paid once per program opened past the bound.
func (t *Tracer) closeOldestLocked() {
	var oldest *program
	for _, p := range t.programs {
		if oldest == nil || p.last.Before(oldest.last) {
			oldest = p
		}
	}
	delete(t.programs, oldest.name)
	t.endRoot(oldest)
}

// sweep sends the root spans of the programs with no syscall ended since now-idle.
func (t *Tracer) sweep(now time.Time) {
	t.endPrograms(func(p *program) bool { return now.Sub(p.last) >= t.idle })
}

// endPrograms sends and forgets the root spans of the programs done says are over.
func (t *Tracer) endPrograms(done func(*program) bool) {
	t.mu.Lock()
	var ended []*program
	for name, p := range t.programs {
		if done(p) {
			ended = append(ended, p)
			delete(t.programs, name)
		}
	}
	t.mu.Unlock()
	for _, p := range ended {
		t.endRoot(p)
	}
}

// endRoot sends p's root span: an invoke_agent span from its first arrival to its last
// end, with the IDs its syscall spans already named as their parent.
func (t *Tracer) endRoot(p *program) {
	ctx := context.WithValue(context.Background(), rootIDsKey{}, p.root)
	name := "invoke_agent"
	if p.agent != "" {
		name += " " + p.agent
	}
	_, span := t.tracer.Start(ctx, name,
		trace.WithNewRoot(),
		trace.WithTimestamp(p.first),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			semconv.GenAIOperationNameInvokeAgent,
			semconv.GenAIAgentName(p.agent),
			semconv.GenAIConversationID(p.name),
			attribute.String("aios.program", p.name),
			attribute.Int("aios.program.syscalls", p.calls),
			attribute.Int("aios.program.failed", p.fails),
			semconv.GenAIUsageInputTokens(p.in),
			semconv.GenAIUsageOutputTokens(p.out),
		))
	span.End(trace.WithTimestamp(p.last))
}

// idGenerator gives program root spans the IDs programIDs derived, and every other span
// random ones.
type idGenerator struct{}

type rootIDsKey struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if sc, ok := ctx.Value(rootIDsKey{}).(trace.SpanContext); ok {
		return sc.TraceID(), sc.SpanID()
	}
	var tid trace.TraceID
	binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
	binary.BigEndian.PutUint64(tid[8:], rand.Uint64()|1)
	return tid, randomSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return randomSpanID() }

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	binary.BigEndian.PutUint64(sid[:], rand.Uint64()|1) // never the invalid all-zero ID
	return sid
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
