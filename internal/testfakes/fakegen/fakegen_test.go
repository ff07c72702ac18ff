package fakegen

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestTextContinues(t *testing.T) {
	h := NewHasher()
	h.Add("user", "hello")
	seed := h.Sum()
	full := Text(seed, 0, 10)
	for k := range 10 {
		prefix := Text(seed, 0, k)
		if prefix+Text(seed, Continues(prefix), 10) != full {
			t.Fatalf("k=%d: continuation does not join", k)
		}
	}
	a, b := NewHasher(), NewHasher()
	a.Add("ab", "c")
	b.Add("a", "bc")
	if a.Sum() == b.Sum() {
		t.Fatal("hash ignores part boundaries")
	}
}

func TestFaultsQueue(t *testing.T) {
	var fs Faults
	fs.Inject(Fault{Kind: Internal, Count: 2})
	fs.Inject(Fault{Kind: Hang})
	var got []FaultKind
	for {
		f, ok := fs.Next()
		if !ok {
			break
		}
		got = append(got, f.Kind)
	}
	if len(got) != 3 || got[0] != Internal || got[1] != Internal || got[2] != Hang {
		t.Fatalf("faults %v", got)
	}
}

func TestPrefixes(t *testing.T) {
	var p Prefixes
	if p.Cached([]uint64{1, 2}) != -1 || p.Cached([]uint64{1, 2, 3}) != 1 || p.Cached([]uint64{9}) != -1 {
		t.Fatal("prefix cache")
	}
}

func TestBase(t *testing.T) {
	var b Base
	b.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, done, err := b.Receive(r)
		defer done()
		if err != nil {
			return
		}
		if f, ok := b.NextFault(); ok && f.Kind == Hang {
			b.Hang(r)
			return
		}
		if !b.Pace(r, 0, 0, time.Hour) {
			return
		}
		_, _ = w.Write(body)
	}))
	defer b.Close()
	post := func() (*http.Response, error) {
		req, _ := http.NewRequest("POST", b.URL(), strings.NewReader("hi"))
		req.Header.Set("X-Test", "1")
		return http.DefaultClient.Do(req)
	}
	res, err := post()
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if b.Requests() != 1 || b.InFlight() != 0 || string(b.LastBody()) != "hi" || b.LastHeader().Get("X-Test") != "1" {
		t.Fatalf("requests %d, in flight %d, last %q %v", b.Requests(), b.InFlight(), b.LastBody(), b.LastHeader())
	}
	if b.NextID() != 1 || b.NextID() != 2 {
		t.Fatal("ids do not count from 1")
	}
	b.InjectFault(Fault{Kind: Hang})
	errc := make(chan error, 1)
	go func() {
		res, err := post()
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	for b.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	b.Close() // ends the hung request
	<-errc
	b.Close()
}
