package fakegemini

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aios-go/aios/internal/testfakes/fakegen"
	"github.com/aios-go/aios/internal/testfakes/fakeopenai"
)

// request is a generateContent request in the Gemini API's REST form.
type request struct {
	Contents          []content `json:"contents"`
	SystemInstruction *content  `json:"systemInstruction"`
	Tools             []struct {
		FunctionDeclarations []struct {
			Name                 string          `json:"name"`
			Description          string          `json:"description"`
			Parameters           json.RawMessage `json:"parameters"`
			ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
	ToolConfig *struct {
		FunctionCallingConfig *struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames"`
		} `json:"functionCallingConfig"`
	} `json:"toolConfig"`
	GenerationConfig *struct {
		Temperature        *float64        `json:"temperature"`
		MaxOutputTokens    int             `json:"maxOutputTokens"`
		ResponseMimeType   string          `json:"responseMimeType"`
		ResponseJSONSchema json.RawMessage `json:"responseJsonSchema"`
		ResponseSchema     json.RawMessage `json:"responseSchema"`
	} `json:"generationConfig"`
}

type content struct {
	Role  string `json:"role"`
	Parts []part `json:"parts"`
}

type part struct {
	Text         *string `json:"text"`
	Thought      bool    `json:"thought"`
	FunctionCall *struct {
		ID   string         `json:"id"`
		Name string         `json:"name"`
		Args map[string]any `json:"args"`
	} `json:"functionCall"`
	FunctionResponse *struct {
		ID       string         `json:"id"`
		Name     string         `json:"name"`
		Response map[string]any `json:"response"`
	} `json:"functionResponse"`
	ThoughtSignature string `json:"thoughtSignature"`
}

type piece struct {
	text string
	call map[string]any // a whole functionCall part
}

type plan struct {
	pieces []piece
	finish string
	prompt int
	cached int
}

func (p *plan) text() string {
	var sb strings.Builder
	for _, pc := range p.pieces {
		sb.WriteString(pc.text)
	}
	return sb.String()
}

func (p *plan) usage(candidates int) map[string]any {
	u := map[string]any{"promptTokenCount": p.prompt, "candidatesTokenCount": candidates, "totalTokenCount": p.prompt + candidates}
	if p.cached > 0 {
		u["cachedContentTokenCount"] = p.cached
	}
	return u
}

type decl struct {
	name   string
	schema json.RawMessage
}

// plan checks the request and decides the whole answer; a non-empty string is the
// message of a 400.
func (s *Server) plan(req *request) (*plan, string) {
	if len(req.Contents) == 0 {
		return nil, "* GenerateContentRequest.contents: contents is not specified"
	}
	var decls []decl
	for _, t := range req.Tools {
		for _, d := range t.FunctionDeclarations {
			if d.Name == "" {
				return nil, "* GenerateContentRequest.tools[0].function_declarations: name is required"
			}
			schema := d.ParametersJSONSchema
			if len(schema) == 0 {
				schema = d.Parameters
			}
			decls = append(decls, decl{d.Name, schema})
		}
	}
	h := fakegen.NewHasher()
	prompt := 0
	if si := req.SystemInstruction; si != nil {
		for _, p := range si.Parts {
			if p.Text != nil {
				h.Add("system", *p.Text)
				prompt += len(strings.Fields(*p.Text))
			}
		}
	}
	hashes := make([]uint64, len(req.Contents))
	counts := make([]int, len(req.Contents))
	for i, c := range req.Contents {
		if c.Role != "user" && c.Role != "model" {
			return nil, fmt.Sprintf("Please use a valid role: user, model. (contents[%d].role %q)", i, c.Role)
		}
		if len(c.Parts) == 0 {
			return nil, fmt.Sprintf("* GenerateContentRequest.contents[%d].parts: contents.parts must not be empty.", i)
		}
		prompt += 4
		h.Add(c.Role)
		for j, p := range c.Parts {
			n := 0
			if p.Text != nil {
				n++
				h.Add("text", *p.Text)
				prompt += len(strings.Fields(*p.Text))
			}
			if fc := p.FunctionCall; fc != nil {
				n++
				if c.Role != "model" || fc.Name == "" {
					return nil, fmt.Sprintf("* contents[%d].parts[%d].function_call: function calls belong to model turns and need a name", i, j)
				}
				if s.opts.RequireThoughtSignatures {
					if p.ThoughtSignature == "" {
						return nil, fmt.Sprintf("Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:%s` , position %d. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.", fc.Name, j+1)
					}
					if sig := string(DecodeSignature(p.ThoughtSignature)); sig != SkipValidator && !strings.HasPrefix(sig, "sig:") {
						return nil, "Corrupted thought signature."
					}
				}
				args, _ := json.Marshal(fc.Args)
				h.Add("call", fc.ID, fc.Name, string(args))
				prompt += 4 + len(fc.Args)
			}
			if fr := p.FunctionResponse; fr != nil {
				n++
				if c.Role != "user" || fr.Name == "" || fr.Response == nil {
					return nil, fmt.Sprintf("* contents[%d].parts[%d].function_response: function responses belong to user turns and need a name and a response object", i, j)
				}
				resp, _ := json.Marshal(fr.Response)
				h.Add("response", fr.ID, fr.Name, string(resp))
				prompt += 4 + len(strings.Fields(string(resp)))
			}
			if n != 1 {
				return nil, fmt.Sprintf("* contents[%d].parts[%d].data: required oneof field 'data' must have one initialized field", i, j)
			}
		}
		hashes[i], counts[i] = h.Sum(), prompt
	}
	// The turn after a model turn with function calls answers every one of them.
	for i, c := range req.Contents {
		calls := 0
		for _, p := range c.Parts {
			if p.FunctionCall != nil {
				calls++
			}
		}
		answers := 0
		if i+1 < len(req.Contents) {
			for _, p := range req.Contents[i+1].Parts {
				if p.FunctionResponse != nil {
					answers++
				}
			}
		}
		if calls > 0 && i+1 < len(req.Contents) && answers != calls {
			return nil, "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn."
		}
		if answers > 0 && calls == 0 {
			return nil, "Please ensure that function response turn comes immediately after a function call turn."
		}
	}
	if req.Contents[0].Role == "user" {
		for _, p := range req.Contents[0].Parts {
			if p.FunctionResponse != nil {
				return nil, "Please ensure that function response turn comes immediately after a function call turn."
			}
		}
	}

	seed := h.Sum()
	p := &plan{prompt: prompt}
	if hit := s.prefixes.Cached(hashes); hit >= 0 {
		p.cached = counts[hit]
	}
	limit := -1
	mime, schema := "", json.RawMessage(nil)
	if gc := req.GenerationConfig; gc != nil {
		if gc.MaxOutputTokens > 0 {
			limit = gc.MaxOutputTokens
		}
		mime, schema = gc.ResponseMimeType, gc.ResponseJSONSchema
		if len(schema) == 0 {
			schema = gc.ResponseSchema
		}
	}

	if d, msg := s.chooseFunction(req, decls); msg != "" {
		return nil, msg
	} else if d != nil {
		key := fmt.Sprintf("%016x", seed)
		args := fakeopenai.Fill(d.schema, seed)
		fc := map[string]any{"name": d.name, "args": args}
		if s.opts.FunctionCallIDs {
			fc["id"] = "fc-" + key
		}
		call := map[string]any{"functionCall": fc}
		if s.opts.RequireThoughtSignatures {
			call["thoughtSignature"] = b64(Signature(key))
		}
		p.pieces = []piece{{call: call}}
		p.finish = "STOP"
		return p, ""
	}
	if mime == "application/json" {
		var v any = map[string]any{"text": fakegen.Text(seed, 0, 3)}
		if len(schema) > 0 {
			v = fakeopenai.Fill(schema, seed)
		}
		b, _ := json.Marshal(v)
		for _, frag := range fakeopenai.Split(string(b), 8) {
			p.pieces = append(p.pieces, piece{text: frag})
		}
		p.finish = "STOP"
		return p, ""
	}
	n, finish := s.opts.DefaultTokens, "STOP"
	if limit >= 0 && limit < n {
		n, finish = limit, "MAX_TOKENS"
	}
	for i := range n {
		p.pieces = append(p.pieces, piece{text: fakegen.Token(seed, i)})
	}
	p.finish = finish
	return p, ""
}

// chooseFunction applies the function-calling mode as Gemini does: ANY forces a call
// (to one of allowedFunctionNames when given), NONE forbids one, AUTO calls only when
// AutoToolCall is set and the conversation does not end with function responses.
func (s *Server) chooseFunction(req *request, decls []decl) (*decl, string) {
	if len(decls) == 0 {
		return nil, ""
	}
	mode, allowed := "AUTO", []string(nil)
	if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		if m := tc.FunctionCallingConfig.Mode; m != "" {
			mode = m
		}
		allowed = tc.FunctionCallingConfig.AllowedFunctionNames
	}
	switch mode {
	case "ANY":
		if len(allowed) == 0 {
			return &decls[0], ""
		}
		i := slices.IndexFunc(decls, func(d decl) bool { return d.name == allowed[0] })
		if i < 0 {
			return nil, fmt.Sprintf("allowed_function_names: %q is not declared", allowed[0])
		}
		return &decls[i], ""
	case "NONE":
		return nil, ""
	case "AUTO":
		last := req.Contents[len(req.Contents)-1]
		answered := slices.ContainsFunc(last.Parts, func(p part) bool { return p.FunctionResponse != nil })
		if s.opts.AutoToolCall && !answered {
			return &decls[0], ""
		}
		return nil, ""
	}
	return nil, fmt.Sprintf("Invalid value at 'tool_config.function_calling_config.mode' (%s)", mode)
}

// DecodeSignature reads a thought signature as the fake received it.
func DecodeSignature(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}
