package engine

import "time"

// Once out, a piece stays out: while the seeder's uplink is busy, it
// reveals only pieces that no connected peer holds and that no connected
// client is fetching from it (fresh pieces, or pieces whose only fetcher
// left). A second copy of a piece that is on its way to a client would
// take its uplink from the first copies of others, and every client waits
// on those: in the LAN lab the seeder sent 1.07-1.5 × the image with its
// uplink busy the whole run, so the room could not be faster than that
// multiple of one copy (docs/benchmarks.md, round three).
//
// When its uplink has room (the clients it serves cannot take its rate: a
// slow or lossy client holds the last first copies, or the endgame), a
// second copy costs nothing, and it reveals the rarest pieces again, a
// little at a time.

// uplinkMeter tells whether the seeder sends near the best rate it has
// been seen to send: a rate over the last meterSpan against the peak of
// such rates. Unknown (less than a span seen, nothing sent yet) counts as
// not busy: the rule then is the reveal's old one.
type uplinkMeter struct {
	samples []meterSample
	peak    float64 // bytes/s
}

type meterSample struct {
	at   time.Time
	sent int64
}

const (
	// meterSpan: a saturated 100 Mbit/s uplink, as the library counts
	// what it writes, reads 8 to 15 MB/s over single seconds (LAN lab);
	// over two seconds it is within a tenth of its rate.
	meterSpan = 2 * time.Second
	// busyShare of the peak rate is busy: well under a saturated link's
	// dips, well over what one slow client can take (a quarter).
	busyShare = 0.6
)

// add records the seeder's bytes sent so far, at, and says whether its
// uplink is busy.
func (m *uplinkMeter) add(at time.Time, sent int64) bool {
	m.samples = append(m.samples, meterSample{at, sent})
	for len(m.samples) > 2 && at.Sub(m.samples[1].at) >= meterSpan {
		m.samples = m.samples[1:]
	}
	first := m.samples[0]
	span := at.Sub(first.at)
	if span < meterSpan*9/10 {
		return false
	}
	rate := float64(sent-first.sent) / span.Seconds()
	m.peak = max(m.peak, rate)
	return m.peak > 0 && rate >= busyShare*m.peak
}
