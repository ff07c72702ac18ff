package builtin

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/internal/testleak"
	"github.com/aios-go/aios/internal/tool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

// newManager registers tools in a real manager, so each test also checks that the
// tool's schema compiles and that calls go through validation as they will in the kernel.
func newManager(t testing.TB, tools ...tool.Tool) *tool.Manager {
	t.Helper()
	m, err := tool.New(tool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range tools {
		if err := m.Register(tl); err != nil {
			t.Fatal(err)
		}
	}
	return m
}
