package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aios-go/aios/api"
)

// With access.auth on, the kernel's admin routes (/admin/*, /agents/*, /ui*, /metrics)
// need an admin key (docs/security.md). Every command that calls one sends --admin-key
// ($AIOS_ADMIN_KEY), and a refusal tells the operator where the key goes.

// setAdminKey puts the admin key, when there is one, on a request.
func setAdminKey(req *http.Request, key string) {
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
}

// adminKeyError is a 401 or 403 from an admin route: retrying with the same key cannot
// help, so commands that poll stop on it.
type adminKeyError struct{ msg string }

func (e *adminKeyError) Error() string { return e.msg }

// adminAuthError explains a 401 or 403 answer of an admin route: which key the kernel
// wants and where it comes from. It is nil for any other status.
func adminAuthError(what string, status int, body []byte, key string) error {
	detail := errorDetail(body)
	var msg string
	switch {
	case status == http.StatusUnauthorized && key == "":
		msg = fmt.Sprintf("%s: the kernel requires an admin key (401: %s); pass --admin-key or set AIOS_ADMIN_KEY (the operator creates one with `aios admin key create`)", what, detail)
	case status == http.StatusUnauthorized:
		msg = fmt.Sprintf("%s: the kernel refused the admin key (401: %s); check --admin-key or AIOS_ADMIN_KEY", what, detail)
	case status == http.StatusForbidden:
		msg = fmt.Sprintf("%s: this key may not use the kernel's admin routes (403: %s); pass an admin key (aios_admin_…) with --admin-key or AIOS_ADMIN_KEY", what, detail)
	default:
		return nil
	}
	return &adminKeyError{msg}
}

// errorDetail is the message of an error answer: AIOS's {"detail"}, OpenAI's
// {"error": {"message"}}, or the text itself.
func errorDetail(body []byte) string {
	var aios api.ErrorBody
	if json.Unmarshal(body, &aios) == nil && aios.Detail != "" {
		return aios.Detail
	}
	var oai struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &oai) == nil && oai.Error.Message != "" {
		return oai.Error.Message
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
