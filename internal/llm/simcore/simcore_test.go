package simcore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
)

// A Core runs an engine goroutine; every test must stop it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newCore(t *testing.T, dim int) *Core {
	t.Helper()
	c, err := New(Config{Config: sim.Config{Profile: "test", Speed: 1000, EmbedDim: dim}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// In process and over HTTP the simulator gives the same vectors, so a kernel on a sim
// core and a client of the simulated server share one space.
func TestEmbedMatchesTheServer(t *testing.T) {
	c := newCore(t, 32)
	if c.EmbedModel() != sim.EmbeddingModel || c.EmbedDim() != 32 {
		t.Fatalf("EmbedModel %q, EmbedDim %d", c.EmbedModel(), c.EmbedDim())
	}
	texts := []string{"the cat sat", "quarterly tax report", ""}
	got, err := c.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim.NewServerFor(c.Live()).Handler())
	defer ts.Close()
	body, _ := json.Marshal(map[string]any{"model": c.EmbedModel(), "input": texts})
	res, err := http.Post(ts.URL+"/v1/embeddings", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var wire struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&wire); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(texts) || len(wire.Data) != len(texts) {
		t.Fatalf("%d in-process and %d served vectors for %d texts", len(got), len(wire.Data), len(texts))
	}
	for i := range texts {
		if len(got[i]) != 32 {
			t.Fatalf("vector %d has %d dims", i, len(got[i]))
		}
		for j := range got[i] {
			if got[i][j] != wire.Data[i].Embedding[j] {
				t.Fatalf("text %d component %d: in-process %v, served %v", i, j, got[i][j], wire.Data[i].Embedding[j])
			}
		}
	}
}

func TestEmbedCancelled(t *testing.T) {
	c := newCore(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Embed(ctx, []string{"a"})
	if k := api.KindOf(err); k != api.CallerCancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v (kind %s), want caller_cancelled wrapping context.Canceled", err, k)
	}
	if v, err := c.Embed(context.Background(), nil); err != nil || len(v) != 0 {
		t.Fatalf("no texts: %v, %v", v, err)
	}
}

// In process, a JSON response_format gets a document that conforms to its schema, sent
// as one delta, and a forced tool call arguments that conform to the tool's.
func TestStructuredOutputs(t *testing.T) {
	c := newCore(t, 0)
	schema := `{"type":"object","properties":{"title":{"type":"string","maxLength":40},"year":{"type":"integer","minimum":1900,"maximum":2100},
		"genres":{"type":"array","items":{"enum":["drama","comedy","noir"]},"minItems":1,"uniqueItems":true},
		"director":{"anyOf":[{"$ref":"#/$defs/person"},{"type":"null"}]}},"required":["title","year","genres","director"],"additionalProperties":false,
		"$defs":{"person":{"type":"object","properties":{"name":{"type":"string"},"born":{"type":"string","format":"date"}},"required":["name","born"],"additionalProperties":false}}}`
	sch := compile(t, schema)
	msgs := []api.Message{{Role: "user", Content: "a film, as JSON"}}

	var deltas []string
	res, err := c.Generate(context.Background(), &llm.Request{Messages: msgs, Resume: "ignored",
		ResponseFormat: &api.ResponseFormat{Type: "json_schema", JSONSchema: json.RawMessage(`{"name":"film","strict":true,"schema":` + schema + `}`)},
	}, func(d llm.Delta) { deltas = append(deltas, d.Text) })
	if err != nil {
		t.Fatal(err)
	}
	conforms(t, sch, res.Text)
	if len(deltas) != 1 || deltas[0] != res.Text || res.FinishReason != "stop" {
		t.Errorf("deltas %q, finish %s", deltas, res.FinishReason)
	}

	res, err = c.Generate(context.Background(), &llm.Request{Messages: msgs, ResponseFormat: &api.ResponseFormat{Type: "json_object"}}, func(llm.Delta) {})
	var obj map[string]any
	if err != nil || json.Unmarshal([]byte(res.Text), &obj) != nil {
		t.Errorf("json_object: %q, %v", res.Text, err)
	}

	tools := []api.Tool{{Type: "function", Function: api.FunctionDef{Name: "save_film", Parameters: json.RawMessage(schema)}}}
	res, err = c.Generate(context.Background(), &llm.Request{Messages: msgs, Tools: tools,
		ToolChoice: json.RawMessage(`{"type":"function","function":{"name":"save_film"}}`)}, func(llm.Delta) {})
	if err != nil || len(res.ToolCalls) != 1 || res.FinishReason != "tool_calls" {
		t.Fatalf("forced tool call: %+v, %v", res, err)
	}
	conforms(t, sch, res.ToolCalls[0].Function.Arguments)
}

func compile(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("mem:///film.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("mem:///film.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func conforms(t *testing.T, sch *jsonschema.Schema, doc string) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("not JSON: %v: %s", err, doc)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("does not conform: %v\n%s", err, doc)
	}
}

// The engine remembers a session's context for the kernel's end hint only when the core
// is told hints will come: otherwise it keeps nothing, and an end finds nothing.
func TestSessionHintsAreOptIn(t *testing.T) {
	for _, hints := range []bool{true, false} {
		c, err := New(Config{Config: sim.Config{Profile: "test", Speed: 1000}, SessionHints: hints})
		if err != nil {
			t.Fatal(err)
		}
		req := &llm.Request{Session: "s", MaxTokens: 2,
			Messages: []api.Message{{Role: "user", Content: api.Content(strings.Repeat("words ", 200))}}}
		if _, err := c.Generate(context.Background(), req, func(llm.Delta) {}); err != nil {
			t.Fatal(err)
		}
		h, err := c.Live().EndSessionWait(context.Background(), "s")
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if h.Known != hints || (h.Blocks > 0) != hints {
			t.Errorf("hints %v: the end found %+v", hints, h)
		}
	}
}
