package kernel

import (
	"fmt"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/llm"
)

func newOpenAICore(m config.Model) (llm.Core, error) {
	return nil, fmt.Errorf("openai backend not wired yet")
}
