// Package tokenizer counts tokens the way OpenAI's models do (tiktoken's o200k_base BPE,
// loaded from the binary rather than downloaded), to estimate what a call will cost
// before any backend has counted it. For other model families it is an estimate: BPE
// vocabularies of that size agree on ordinary text to within a few percent, which is
// what rate limiting and admission need.
package tokenizer

import (
	"hash/maphash"
	"sync"

	"github.com/aios-go/aios/api"
	tiktoken "github.com/pkoukk/tiktoken-go"
	loader "github.com/pkoukk/tiktoken-go-loader"
)

// Encoding is the BPE used for every count.
const Encoding = "o200k_base"

// Per-message framing, as OpenAI's cookbook counts it for its chat models: each message
// costs a few tokens of role and separators, and the reply is primed with three more.
const (
	perMessage = 3
	perName    = 1
	perReply   = 3
	perTool    = 8
)

// Texts longer than this are estimated from their length instead of encoded: the BPE
// runs at about 2 MB/s, and a multi-megabyte prompt would stall the call for longer than
// the precision is worth.
const maxEncode = 1 << 20

var encoder = sync.OnceValues(func() (*tiktoken.Tiktoken, error) {
	// The default loader fetches the vocabulary from the internet on first use; the kernel
	// must start offline, so the vocabulary embedded in the binary is used instead.
	tiktoken.SetBpeLoader(loader.NewOfflineLoader())
	return tiktoken.GetEncoding(Encoding)
})

// cache remembers the counts of long texts. Agents resend their whole conversation on
// every turn, so most of a prompt was counted on an earlier call; without the cache a
// long conversation would be re-encoded, at milliseconds per turn, every time.
var cache struct {
	sync.Mutex
	seed maphash.Seed
	m    map[uint64]int
}

const (
	cacheMin     = 256     // shorter texts encode faster than they hash and look up
	cacheEntries = 1 << 16 // bound on memory; dropping everything only costs time
)

func init() {
	cache.seed = maphash.MakeSeed()
	cache.m = make(map[uint64]int)
}

// Count is the number of tokens in s.
func Count(s string) int {
	if s == "" {
		return 0
	}
	if len(s) > maxEncode {
		return (len(s) + 3) / 4
	}
	var key uint64
	if len(s) >= cacheMin {
		key = maphash.String(cache.seed, s)
		cache.Lock()
		n, ok := cache.m[key]
		cache.Unlock()
		if ok {
			return n
		}
	}
	enc, err := encoder()
	if err != nil {
		// The vocabulary is compiled in, so this cannot fail short of a broken build;
		// a rough count keeps the caller working if it ever does.
		return (len(s) + 3) / 4
	}
	n := len(enc.EncodeOrdinary(s))
	if len(s) >= cacheMin {
		cache.Lock()
		if len(cache.m) >= cacheEntries {
			clear(cache.m)
		}
		cache.m[key] = n
		cache.Unlock()
	}
	return n
}

// Prompt is the number of tokens a chat prompt of msgs and tools takes, framing included.
func Prompt(msgs []api.Message, tools []api.Tool) int {
	n := perReply
	for _, m := range msgs {
		n += perMessage + Count(m.Role) + Count(string(m.Content))
		if m.Name != "" {
			n += perName + Count(m.Name)
		}
		for _, tc := range m.ToolCalls {
			n += perMessage + Count(tc.Function.Name) + Count(tc.Function.Arguments)
		}
	}
	for _, t := range tools {
		n += perTool + Count(t.Function.Name) + Count(t.Function.Description) + Count(string(t.Function.Parameters))
	}
	return n
}
