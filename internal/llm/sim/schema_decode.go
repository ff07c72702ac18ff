package sim

// Decoding schemas with their keys in order, and the draft they are written in.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

type jobj struct {
	keys []string
	vals map[string]any
}

// decodeOrdered decodes one JSON value: nil, bool, json.Number, string, []any, *jobj.
// A repeated key keeps its first place and its last value, as encoding/json keeps it.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > 10000 {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		o := &jobj{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			if _, dup := o.vals[k]; !dup {
				o.keys = append(o.keys, k)
			}
			o.vals[k] = v
		}
		_, err := dec.Token()
		return o, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token()
		return arr, err
	}
	return nil, errors.New("unexpected delimiter")
}

// draftOf reads $schema as the validator does; without one, 2020-12.
func draftOf(root any) int {
	o, ok := root.(*jobj)
	if !ok {
		return 2020
	}
	s, _ := o.vals["$schema"].(string)
	s = strings.TrimSuffix(s, "#")
	if t, ok := strings.CutPrefix(s, "http://"); ok {
		s = t
	} else {
		s = strings.TrimPrefix(s, "https://")
	}
	switch s {
	case "json-schema.org/draft-04/schema":
		return 4
	case "json-schema.org/draft-06/schema":
		return 6
	case "json-schema.org/draft-07/schema":
		return 7
	case "json-schema.org/draft/2019-09/schema":
		return 2019
	}
	return 2020
}

// hasForeignIDs reports an identifier below the root. It starts a resource of its own,
// against which "#/..." references inside it resolve, so pointers from the document
// root would be wrong there; the generator then treats every $ref as unresolved. (It
// also matches such keys inside enum or const values: a false alarm is only caution.)
func hasForeignIDs(v any, draft int, root bool) bool {
	switch v := v.(type) {
	case *jobj:
		if !root {
			if _, ok := v.vals["$id"].(string); ok {
				return true
			}
			if _, ok := v.vals["id"].(string); ok && draft == 4 {
				return true
			}
		}
		for _, k := range v.keys {
			if hasForeignIDs(v.vals[k], draft, false) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasForeignIDs(e, draft, false) {
				return true
			}
		}
	}
	return false
}

// gen is one document's generation.
