package sim

import "container/heap"

// waitQueue is the engine's waiting queue. Under fcfs it is a deque: arrivals join the
// back and preempted requests rejoin the front, so a preempted request resumes before
// anything that arrived after it (vLLM's prepend_request). Under priority it is a heap on
// (priority, arrival, id), lower first, as vLLM's PriorityRequestQueue.
type waitQueue struct {
	priority bool
	ring     []*Request // fcfs: circular buffer
	head, n  int
	heap     reqHeap // priority
}

func (q *waitQueue) len() int {
	if q.priority {
		return len(q.heap)
	}
	return q.n
}

func (q *waitQueue) push(r *Request) {
	if q.priority {
		heap.Push(&q.heap, r)
		return
	}
	q.grow()
	q.ring[(q.head+q.n)%len(q.ring)] = r
	q.n++
}

// pushFront returns a preempted request to the queue.
func (q *waitQueue) pushFront(r *Request) {
	if q.priority {
		heap.Push(&q.heap, r)
		return
	}
	q.grow()
	q.head = (q.head - 1 + len(q.ring)) % len(q.ring)
	q.ring[q.head] = r
	q.n++
}

func (q *waitQueue) grow() {
	if q.n < len(q.ring) {
		return
	}
	size := 2 * len(q.ring)
	if size == 0 {
		size = 16
	}
	ring := make([]*Request, size)
	for i := 0; i < q.n; i++ {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

func (q *waitQueue) peek() *Request {
	if q.priority {
		return q.heap[0]
	}
	return q.ring[q.head]
}

func (q *waitQueue) pop() *Request {
	if q.priority {
		return heap.Pop(&q.heap).(*Request)
	}
	r := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return r
}

// remove takes out a cancelled request; linear, as cancellation is rare.
func (q *waitQueue) remove(r *Request) bool {
	if q.priority {
		if r.heapIdx < 0 || r.heapIdx >= len(q.heap) || q.heap[r.heapIdx] != r {
			return false
		}
		heap.Remove(&q.heap, r.heapIdx)
		return true
	}
	for i := 0; i < q.n; i++ {
		if q.ring[(q.head+i)%len(q.ring)] != r {
			continue
		}
		for j := i; j < q.n-1; j++ {
			q.ring[(q.head+j)%len(q.ring)] = q.ring[(q.head+j+1)%len(q.ring)]
		}
		q.ring[(q.head+q.n-1)%len(q.ring)] = nil
		q.n--
		return true
	}
	return false
}

type reqHeap []*Request

func (h reqHeap) Len() int { return len(h) }
func (h reqHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.Priority != b.Priority {
		return a.Priority < b.Priority
	}
	if a.Arrival != b.Arrival {
		return a.Arrival < b.Arrival
	}
	return a.seq < b.seq
}
func (h reqHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *reqHeap) Push(x any) {
	r := x.(*Request)
	r.heapIdx = len(*h)
	*h = append(*h, r)
}
func (h *reqHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	r.heapIdx = -1
	*h = old[:len(old)-1]
	return r
}
