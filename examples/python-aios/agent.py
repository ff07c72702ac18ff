"""An agent in AIOS's agent-folder format that speaks AIOS's wire protocol with Python's
standard library only: every call is POST {AIOS_KERNEL_URL}/query with agent_name,
query_type and query_data, in the shapes AIOS's Python SDK (Cerebrum) sends.

Run it through the kernel's agent runtime, which builds TripPlanner(agent_name) and calls
run(task), as AIOS's agent factory does:

    aios agents run examples/python-aios --task "A weekend in Lisbon for two"

or submit it to a kernel whose agents.dirs holds examples/ (POST /agents/submit with
agent_id "python-aios"). It uses the four kernel modules: memory (what it planned before),
a tool (the calculator, for the budget), the LLM (the plan) and storage (the plan as a
versioned file), then remembers the plan.
"""
import json
import os
import urllib.error
import urllib.request

KERNEL = os.environ.get("AIOS_KERNEL_URL", "http://localhost:8000").rstrip("/")
# The program this run is: every syscall says it, so the kernel schedules the run's calls
# as one program (the session field of llm and tool queries; the header on all).
PROGRAM = os.environ.get("AIOS_PROGRAM", "")
# With the kernel's access manager on, the runtime gives each run its own key.
KEY = os.environ.get("AIOS_AGENT_KEY", "")


class KernelError(RuntimeError):
    pass


def send_request(agent_name, query_type, query_data):
    """POST /query as Cerebrum's send_request does, and return the response object."""
    body = json.dumps({"agent_name": agent_name, "query_type": query_type, "query_data": query_data}).encode()
    headers = {"Content-Type": "application/json"}
    if PROGRAM:
        headers["X-AIOS-Session"] = PROGRAM
    if KEY:
        headers["Authorization"] = "Bearer " + KEY
    req = urllib.request.Request(KERNEL + "/query", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            answer = json.load(resp)
    except urllib.error.HTTPError as e:
        raise KernelError(f"{query_type} query refused: HTTP {e.code}: {e.read().decode(errors='replace')}") from None
    response = answer["response"]
    # Backend and module failures travel inside HTTP 200, as status_code.
    if response.get("status_code", 200) >= 300 or response.get("success") is False:
        raise KernelError(f"{query_type} query failed: {response.get('error')}")
    return response


class TripPlanner:
    def __init__(self, agent_name):
        self.agent_name = agent_name
        self.rounds = 0

    def llm_chat(self, messages):
        self.rounds += 1
        return send_request(self.agent_name, "llm", {
            "query_class": "llm",
            "llms": None,
            "messages": messages,
            "tools": None,
            "action_type": "chat",
            "message_return_type": "text",
            "temperature": 1.0,
            "max_new_tokens": 200,
            "session": PROGRAM,
        })["response_message"]

    def memory(self, operation_type, params):
        return send_request(self.agent_name, "memory", {
            "query_class": "memory", "operation_type": operation_type, "params": params,
        })

    def storage(self, operation_type, params):
        return send_request(self.agent_name, "storage", {
            "query_class": "storage", "operation_type": operation_type, "params": params,
        })["response_message"]

    def call_tools(self, tool_calls):
        return send_request(self.agent_name, "tool", {
            "query_class": "tool", "tool_calls": tool_calls, "session": PROGRAM,
        })["response_message"]

    def run(self, task_input):
        # Memory: what did we plan before that looks like this?
        earlier = self.memory("retrieve_memory", {"content": task_input, "k": 3}).get("search_results") or []
        recalled = [r.get("content", "") for r in earlier]

        # A tool: the budget, by the kernel's calculator.
        budget = self.call_tools([{"name": "calculator", "parameters": {"expression": "2 * (3 * 120 + 2 * 45)"}}])

        # The LLM: the plan.
        messages = [
            {"role": "system", "content": "You plan short trips."},
            {"role": "user", "content": f"{task_input}\nBudget in euros: {budget}.\nEarlier plans: {recalled}"},
        ]
        plan = self.llm_chat(messages)

        # Storage: keep the plan as a file, and read it back.
        path = "plans/trip.md"
        self.storage("write", {"file_path": path, "content": f"# {task_input}\n\nBudget: {budget} EUR\n\n{plan}\n"})
        stored = self.storage("read", {"file_path": path})

        # Memory: remember this plan for next time.
        memory_id = self.memory("add_memory", {
            "content": f"Planned: {task_input} (budget {budget} EUR)",
            "metadata": {"tags": ["trip"], "keywords": ["plan", "budget"], "category": "plans"},
        }).get("memory_id")

        print(f"planned {task_input!r} in {self.rounds} LLM round(s); budget {budget}")
        return {
            "agent_name": self.agent_name,
            "result": plan,
            "rounds": self.rounds,
            "budget": budget,
            "file": path,
            "file_bytes": len(stored.encode()),
            "memory_id": memory_id,
            "recalled": len(recalled),
        }
