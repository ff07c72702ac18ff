package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aios-go/aios/api"
)

// decodeBody reads r's JSON body into v, capped at the configured size, and turns every
// way it can be wrong into a caller error that says what to fix.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return api.Errorf(api.CallerTooLarge, "request body exceeds the limit of %d bytes", mbe.Limit)
		}
		return api.Wrap(api.CallerBadRequest, err, "reading the request body failed")
	}
	return decodeJSON(data, v, "request body")
}

// decodeJSON unmarshals data into v; what names the document in messages.
func decodeJSON(data []byte, v any, what string) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return api.Errorf(api.CallerBadRequest, "%s is empty; expected a JSON object", what)
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return api.Errorf(api.CallerBadRequest, "%s is not valid JSON at byte %d: %v", what, syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return api.Errorf(api.CallerBadRequest, "%s must be a JSON %s, not %s", what, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return api.Errorf(api.CallerBadRequest, "%s: field %q must be %s, not %s", what, field, jsonKind(typ.Type.Kind().String()), typ.Value)
	}
	return api.Wrap(api.CallerBadRequest, err, "%s could not be decoded", what)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "float32", "float64", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a number"
	}
	return fmt.Sprintf("of type %s", goKind)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeDetail(w http.ResponseWriter, status int, kind api.Kind, detail string) {
	writeJSON(w, status, api.ErrorBody{Detail: detail, Kind: kind})
}

// writeError writes err as {"detail", "kind"} with the status its kind maps to.
func writeError(w http.ResponseWriter, err error) {
	k := api.KindOf(err)
	var ae *api.Error
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(ae.RetryAfter.Seconds()+0.999)))
	}
	writeDetail(w, k.HTTPStatus(), k, errorMessage(err))
}

// errorMessage is the text shown to callers: the typed error's message without the kind
// prefix (the kind travels in its own field).
func errorMessage(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		if ae.Err != nil {
			return ae.Message + ": " + ae.Err.Error()
		}
		return ae.Message
	}
	return err.Error()
}
