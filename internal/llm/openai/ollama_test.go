package openai

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aios-go/aios/api"
)

// ollamaServer answers /api/tags as Ollama does.
func ollamaServer(t *testing.T, status int, body string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/tags", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

const ollamaTagsBody = `{"models":[
 {"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2026-10-01T09:30:00.123456789+02:00","size":2019393189,"digest":"a80c4f17acd5","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"}},
 {"name":"qwen2.5:7b","model":"qwen2.5:7b","modified_at":"2026-09-12T10:00:00Z","size":4683087332,"digest":"845dbda0ea48","details":{"format":"gguf","family":"qwen2","parameter_size":"7.6B","quantization_level":"Q4_K_M"}}]}`

func TestListOllamaModels(t *testing.T) {
	for _, suffix := range []string{"", "/v1", "/v1/"} {
		url := ollamaServer(t, http.StatusOK, ollamaTagsBody)
		c := newCore(t, Config{BaseURL: url + suffix})
		ms, err := c.ListOllamaModels(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 || ms[0].ID != "llama3.2:latest" || ms[1].ID != "qwen2.5:7b" || ms[0].OwnedBy != "ollama" || ms[1].Created != 1789207200 {
			t.Fatalf("base %q: models %+v", suffix, ms)
		}
	}
}

func TestListOllamaModelsErrors(t *testing.T) {
	c := newCore(t, Config{BaseURL: ollamaServer(t, http.StatusNotFound, `404 page not found`)})
	if _, err := c.ListOllamaModels(t.Context()); api.KindOf(err) != api.BackendRejected {
		t.Fatalf("not an ollama server: %v", err)
	}
	c = newCore(t, Config{BaseURL: ollamaServer(t, http.StatusOK, `<html>`)})
	if _, err := c.ListOllamaModels(t.Context()); api.KindOf(err) != api.BackendBadResponse {
		t.Fatalf("html: %v", err)
	}
}
