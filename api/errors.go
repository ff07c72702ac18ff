package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind classifies an error by who is at fault. The set is closed: every error the kernel
// returns to an agent carries exactly one Kind, and HTTP status, AIOS status_code and
// retryability are derived from it here and nowhere else.
type Kind string

const (
	// The caller sent something wrong; retrying the same request cannot help.
	CallerBadRequest   Kind = "caller_bad_request"
	CallerNotFound     Kind = "caller_not_found"
	CallerTooLarge     Kind = "caller_too_large"
	CallerCancelled    Kind = "caller_cancelled"
	CallerUnauthorized Kind = "caller_unauthorized"

	// A policy of the kernel refused the call.
	PolicyDenied     Kind = "policy_denied"
	PolicyQuota      Kind = "policy_quota_exceeded"
	PolicyTimeout    Kind = "policy_timeout"
	PolicyNotEnabled Kind = "policy_not_enabled"

	// The LLM backend (or tool server) failed.
	BackendRateLimited Kind = "backend_rate_limited"
	BackendOverloaded  Kind = "backend_overloaded"
	BackendUnavailable Kind = "backend_unavailable"
	BackendTimeout     Kind = "backend_timeout"
	BackendBadResponse Kind = "backend_bad_response"
	BackendRejected    Kind = "backend_rejected"

	// The kernel itself failed: a bug or shutdown.
	KernelInternal     Kind = "kernel_internal"
	KernelShuttingDown Kind = "kernel_shutting_down"
)

type kindInfo struct {
	status    int
	retryable bool
}

var kinds = map[Kind]kindInfo{
	CallerBadRequest:   {http.StatusBadRequest, false},
	CallerNotFound:     {http.StatusNotFound, false},
	CallerTooLarge:     {http.StatusRequestEntityTooLarge, false},
	CallerCancelled:    {499, false},
	CallerUnauthorized: {http.StatusUnauthorized, false},
	PolicyDenied:       {http.StatusForbidden, false},
	PolicyQuota:        {http.StatusTooManyRequests, true},
	PolicyTimeout:      {http.StatusGatewayTimeout, true},
	PolicyNotEnabled:   {http.StatusNotImplemented, false},
	BackendRateLimited: {http.StatusTooManyRequests, true},
	BackendOverloaded:  {http.StatusServiceUnavailable, true},
	BackendUnavailable: {http.StatusBadGateway, true},
	BackendTimeout:     {http.StatusGatewayTimeout, true},
	BackendBadResponse: {http.StatusBadGateway, true},
	BackendRejected:    {http.StatusBadRequest, false},
	KernelInternal:     {http.StatusInternalServerError, false},
	KernelShuttingDown: {http.StatusServiceUnavailable, true},
}

// Kinds lists every Kind, for tests and documentation.
func Kinds() []Kind {
	out := make([]Kind, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	return out
}

// HTTPStatus is the status a Kind maps to. It is also AIOS's status_code for errors that
// travel inside an HTTP 200 /query response.
func (k Kind) HTTPStatus() int {
	if i, ok := kinds[k]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Retryable reports whether the same request may succeed later or elsewhere.
func (k Kind) Retryable() bool { return kinds[k].retryable }

// Error is the typed error every layer of the kernel returns.
type Error struct {
	Kind    Kind
	Message string
	// RetryAfter is set when the source of the error said how long to wait.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error of kind k.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error of kind k around err.
func Wrap(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the Kind of err, or KernelInternal when err carries none: an
// unclassified error reaching the caller is a kernel bug.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KernelInternal
}

// ErrorBody is the JSON body of every non-2xx response. "detail" is what AIOS's FastAPI
// server returns, so AIOS clients read it; "kind" lets programs branch on the cause.
type ErrorBody struct {
	Detail string `json:"detail"`
	Kind   Kind   `json:"kind,omitempty"`
}
