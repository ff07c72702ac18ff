// Command go-sdk is an agent on the kernel's Go SDK (package sdk): it recalls earlier
// notes from memory, has the kernel's calculator tool work out a number, asks the LLM,
// keeps its answer as a file in storage and remembers it, every call a syscall of one
// program.
//
// Run it through the agent runtime, which sets its environment:
//
//	aios agents run examples/go-sdk --task "Estimate the cost of a bike trip"
//
// or by hand against a running kernel: go run ./examples/go-sdk "Estimate ...".
// It prints its result as one JSON line after the runtime's result marker.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/sdk"
)

// resultMarker starts the line the agent runtime reads as the run's result.
const resultMarker = "::aios-result::"

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "go-sdk agent:", err)
		os.Exit(1)
	}
}

func run() error {
	// The runtime gives the kernel's URL, the agent's name and its program id; the
	// session option sends the program with every call, so the kernel schedules them as
	// one program.
	kernel := env("AIOS_KERNEL_URL", "http://localhost:8000")
	agent := env("AIOS_AGENT", "go-sdk-example")
	program := env("AIOS_PROGRAM", fmt.Sprintf("go-sdk-%d", os.Getpid()))
	task := strings.Join(os.Args[1:], " ")
	if task == "" {
		task = env("AIOS_TASK", "Estimate the cost of a three-day bike trip")
	}
	opts := []sdk.Option{sdk.WithAgent(agent), sdk.WithSession(program), sdk.WithTimeout(2 * time.Minute)}
	// With the kernel's access manager on, the runtime gives each run its own key.
	if key := os.Getenv("AIOS_AGENT_KEY"); key != "" {
		opts = append(opts, sdk.WithAPIKey(key))
	}
	c := sdk.New(kernel, opts...)
	ctx := context.Background()

	// Memory: notes from earlier runs that look like this task.
	recalled, err := c.RetrieveMemory(ctx, task, 3, api.MemoryParams{})
	if err != nil {
		return fmt.Errorf("retrieve memory: %w", err)
	}

	// A tool: the kernel's calculator.
	calc, err := c.CallTool(ctx, []api.ToolCallRequest{{Name: "calculator", Parameters: json.RawMessage(`{"expression": "3 * (25 + 18.5)"}`)}})
	if err != nil {
		return fmt.Errorf("calculator: %w", err)
	}
	cost := ""
	if calc.ResponseMessage != nil {
		cost = *calc.ResponseMessage
	}

	// The LLM.
	maxTokens := 120
	answer, err := c.LLMChat(ctx, []api.Message{
		{Role: "system", Content: api.Content("You estimate trip costs briefly.")},
		{Role: "user", Content: api.Content(fmt.Sprintf("%s. Daily costs come to %s euros. Earlier notes: %d.", task, cost, len(recalled)))},
	}, sdk.LLMOptions{MaxNewTokens: &maxTokens})
	if err != nil {
		return fmt.Errorf("llm: %w", err)
	}

	// Storage: the answer as a file, read back.
	path := "estimates/" + program + ".md"
	if err := c.WriteFile(ctx, path, fmt.Sprintf("# %s\n\nCost: %s EUR\n\n%s\n", task, cost, answer.Text())); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	stored, err := c.ReadFile(ctx, path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}

	// Memory: remember the estimate.
	id, err := c.AddMemory(ctx, fmt.Sprintf("Estimated %q at %s EUR", task, cost),
		map[string]any{"tags": []string{"estimate"}, "category": "costs"})
	if err != nil {
		return fmt.Errorf("add memory: %w", err)
	}

	fmt.Fprintf(os.Stderr, "estimated %q: %s EUR\n", task, cost)
	out, err := json.Marshal(map[string]any{
		"agent_name": agent, "result": answer.Text(), "cost": cost, "file": path,
		"file_bytes": len(stored), "memory_id": id, "recalled": len(recalled),
	})
	if err != nil {
		return err
	}
	fmt.Println(resultMarker + string(out))
	return nil
}
