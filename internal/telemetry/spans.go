package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// record sends the spans of one ended syscall: the syscall's own, under its program's
// root, and its two phases as children, aios.queue (arrival to first start) and aios.run
// (first start to end). It is the kernel's end hook: quick, never blocking.
func (t *Tracer) record(sc *kernel.Syscall) {
	if t.afterRecord != nil {
		defer t.afterRecord()
	}
	tm := sc.Timings()
	ti := sc.TraceInfo()
	res, err := sc.Result()
	arrival, end := tm.Arrival, tm.End
	if end.Before(arrival) {
		end = arrival
	}
	var result *llm.Result
	if ti.LLM {
		result, _ = res.(*llm.Result)
	}
	in, out := tokens(ti, result, err)
	root, ok := t.programFor(sc.Program, sc.Agent, arrival, end, err != nil, in, out)
	if !ok {
		return
	}

	name, kind, attrs := t.describe(sc, ti, result, in, out)
	attrs = append(attrs,
		attribute.Int64("aios.syscall.id", int64(sc.ID)),
		attribute.String("aios.module", sc.Module.String()),
		attribute.String("aios.op", sc.Op),
		attribute.String("aios.state", string(sc.State())),
		attribute.Float64("aios.queue_ms", ms(tm.Waiting)),
		attribute.Int("aios.slices", ti.Slices),
	)
	if sc.Thread != "" {
		attrs = append(attrs, attribute.String("aios.thread", sc.Thread))
	}
	if sc.Priority != 0 {
		attrs = append(attrs, attribute.Int("aios.priority", sc.Priority))
	}
	if err != nil {
		kind := string(api.KindOf(err))
		attrs = append(attrs, semconv.ErrorTypeKey.String(kind), attribute.String("aios.error.kind", kind))
	}

	ctx := trace.ContextWithSpanContext(context.Background(), root)
	ctx, span := t.tracer.Start(ctx, name, trace.WithTimestamp(arrival), trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	if !span.IsRecording() { // not sampled
		span.End()
		return
	}
	start := tm.Start
	if start.IsZero() {
		// Never started: it ended in the queue (cancelled, timed out, refused as busy).
		start = end
	}
	start = minTime(maxTime(start, arrival), end)
	_, queued := t.tracer.Start(ctx, "aios.queue", trace.WithTimestamp(arrival))
	queued.End(trace.WithTimestamp(start))
	if !tm.Start.IsZero() {
		runAttrs := []attribute.KeyValue{attribute.Int("aios.slices", ti.Slices), attribute.Float64("aios.service_ms", ms(ti.Service))}
		if ti.LLM {
			runAttrs = append(runAttrs, attribute.Int("aios.preemptions", ti.Preempted))
			if ti.Core != "" {
				runAttrs = append(runAttrs, attribute.String("aios.core", ti.Core))
			}
		}
		_, run := t.tracer.Start(ctx, "aios.run", trace.WithTimestamp(start), trace.WithAttributes(runAttrs...))
		run.End(trace.WithTimestamp(end))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End(trace.WithTimestamp(end))
}

// describe names a syscall's span after the gen_ai conventions: "chat {model}" for an LLM
// call, "execute_tool {tool}" for a tool call, "{module}.{op}" for storage and memory.
func (t *Tracer) describe(sc *kernel.Syscall, ti kernel.TraceInfo, res *llm.Result, in, out int) (string, trace.SpanKind, []attribute.KeyValue) {
	attrs := []attribute.KeyValue{
		semconv.GenAIAgentName(sc.Agent),
		semconv.GenAIConversationID(sc.Program),
	}
	switch {
	case ti.LLM:
		backend := ti.Backend
		if backend == "" {
			t.mu.Lock()
			backendOf := t.backendOf
			t.mu.Unlock()
			backend = backendOf(ti.Resource)
		}
		attrs = append(attrs,
			semconv.GenAIOperationNameChat,
			provider(backend),
			semconv.GenAIRequestModel(ti.Resource),
			attribute.String("aios.backend", backend),
		)
		if ti.MaxTokens > 0 {
			attrs = append(attrs, semconv.GenAIRequestMaxTokens(ti.MaxTokens))
		}
		if ti.Temperature != nil {
			attrs = append(attrs, semconv.GenAIRequestTemperature(*ti.Temperature))
		}
		if res != nil {
			// The kernel answers as the model asked for, whichever core served it.
			attrs = append(attrs, semconv.GenAIResponseModel(ti.Resource), semconv.GenAIUsageInputTokens(in))
			if c := res.Usage.PromptTokensDetails; c != nil && c.CachedTokens > 0 {
				attrs = append(attrs, semconv.GenAIUsageCacheReadInputTokens(c.CachedTokens))
			}
			if res.FinishReason != "" {
				attrs = append(attrs, semconv.GenAIResponseFinishReasons(res.FinishReason))
			}
		}
		if res != nil || out > 0 {
			attrs = append(attrs, semconv.GenAIUsageOutputTokens(out))
		}
		kind := trace.SpanKindClient
		if backend == "sim" {
			// The conventions' kind for a model running in the same process.
			kind = trace.SpanKindInternal
		}
		return "chat " + ti.Resource, kind, attrs
	case sc.Module == sched.Tool && ti.Resource != "":
		attrs = append(attrs, semconv.GenAIOperationNameExecuteTool, semconv.GenAIToolName(ti.Resource))
		return "execute_tool " + ti.Resource, trace.SpanKindInternal, attrs
	default:
		return sc.Module.String() + "." + sc.Op, trace.SpanKindInternal, attrs
	}
}

// tokens are an LLM call's input and output tokens: what its backend reported, or, for a
// call that failed midway, the tokens it streamed (what the kernel charges for it).
func tokens(ti kernel.TraceInfo, res *llm.Result, err error) (in, out int) {
	if !ti.LLM {
		return 0, 0
	}
	if res != nil && err == nil {
		return res.Usage.PromptTokens, res.Usage.CompletionTokens
	}
	return 0, ti.Streamed
}

// provider is gen_ai.provider.name for a configured backend: the conventions' name where
// there is one, aios.sim for the simulator, the backend's own name otherwise (vllm,
// sglang, ollama).
func provider(backend string) attribute.KeyValue {
	switch backend {
	case "openai":
		return semconv.GenAIProviderNameOpenAI
	case "anthropic":
		return semconv.GenAIProviderNameAnthropic
	case "gemini":
		return semconv.GenAIProviderNameGCPGemini
	case "sim":
		return semconv.GenAIProviderNameKey.String("aios.sim")
	case "":
		return semconv.GenAIProviderNameKey.String("unknown")
	}
	return semconv.GenAIProviderNameKey.String(backend)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
