package extent

import "testing"

// The held buffers of a session's deploys share one budget: pieces of two
// jobs never have more buffers allocated than the limit, a buffer given
// back is reused by the other job, and kept buffers of another size make
// room for a new one.
func TestHeldBudgetSharesBuffers(t *testing.T) {
	const plen = 1 << 20
	b := &Budget{limit: 3 * plen}
	allocated := func() int64 { return b.used + b.freeBytes }
	var bufs [][]byte
	for range 3 {
		if !b.take(plen) {
			t.Fatal("budget refused a piece within its limit")
		}
		bufs = append(bufs, b.buf(plen, plen))
	}
	if b.take(plen) {
		t.Fatal("budget took a fourth piece over its limit")
	}
	// job A gives one back; job B's next piece gets that very buffer
	first := &bufs[0][0]
	b.give(plen)
	b.keep(bufs[0])
	if !b.take(plen) {
		t.Fatal("budget refused a piece after one was given back")
	}
	if got := b.buf(plen, plen); &got[0] != first {
		t.Error("a kept buffer was not reused")
	}
	if a := allocated(); a > 3*plen {
		t.Errorf("allocated %d bytes, limit %d", a, 3*plen)
	}
	// everything back: kept up to the limit
	for range 3 {
		b.give(plen)
	}
	for _, x := range bufs {
		b.keep(x)
	}
	if b.used != 0 || b.freeBytes > 3*plen {
		t.Errorf("after giving all back: used %d, kept %d", b.used, b.freeBytes)
	}
	// a job with half-size pieces: kept full-size buffers are dropped as
	// needed so that the total stays within the limit
	for range 6 {
		if !b.take(plen / 2) {
			t.Fatal("budget refused a half piece within its limit")
		}
		if got := b.buf(plen/2, plen/2); cap(got) != plen/2 {
			t.Fatalf("buffer of capacity %d for a half piece", cap(got))
		}
		if a := b.used + b.freeBytes; a > 3*plen {
			t.Fatalf("allocated %d bytes with half pieces, limit %d", a, 3*plen)
		}
	}
}
