package access

import (
	"testing"

	"github.com/aios-go/aios/api"
)

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr           string
		auth, override bool
		ok             bool
	}{
		{"127.0.0.1:8000", false, false, true},
		{"127.1.2.3:8000", false, false, true},
		{"localhost:8000", false, false, true},
		{"LOCALHOST:8000", false, false, true},
		{"[::1]:8000", false, false, true},
		{"[::ffff:127.0.0.1]:8000", false, false, true},
		{":8000", false, false, false},
		{"0.0.0.0:8000", false, false, false},
		{"[::]:8000", false, false, false},
		{"10.0.0.5:8000", false, false, false},
		{"[fe80::1%lo]:8000", false, false, false},
		{"myhost:8000", false, false, false},
		{"localhost.evil.com:8000", false, false, false},
		{"8000", false, false, false},
		{"0.0.0.0:8000", true, false, true},
		{":8000", false, true, true},
		{"10.0.0.5:8000", true, true, true},
	} {
		err := CheckListen(tc.addr, tc.auth, tc.override)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, auth %v, override %v) = %v, want ok %v", tc.addr, tc.auth, tc.override, err, tc.ok)
		}
		if err != nil && kindOf(err) != api.CallerBadRequest {
			t.Errorf("%q: kind %s", tc.addr, kindOf(err))
		}
	}
}
