// Command swarmsim is a swarm simulator for ezio's deploys: one seeder and
// N clients on links of one rate, running ezio's own piece choice (the
// client's picker and the seeder's reveal, through engine.PiecePicker and
// engine.RevealPlanner, and the reveal's busy test, engine.SeederMeter)
// against a fluid model of the network and of the library's requests:
//
//   - every node has an uplink and a downlink of -rate Mbit/s (goodput);
//     one TCP connection per pair of connected nodes; the connections
//     with requests outstanding share every link max-min fairly
//     (progressive filling), which is how TCP flows through FIFO ports
//     share on average; a connection carries at most its outstanding
//     requests per round trip: -rtt, plus -queue (the lab's 50 ms FIFO)
//     for each saturated port on the way, plus, on a connection between
//     two clients that also carries data the other way, -hol round trips
//     that a request waits behind the client's own upload in the same
//     TCP stream (socket buffers: the one parameter fitted to the lab);
//   - the seeder is connected to every client; each client to about
//     -conns other clients (a random graph);
//   - a client keeps pieces in flight in the library's order (priority,
//     then partial, then fewest holders, then index) as long as its bytes
//     requested and not verified stay within the deploy's budget
//     (engine.UnverifiedBudget); each connection asks for 16 KiB chunks
//     of them as anacrolix/torrent v1.61 does (links.go: requests answered
//     in order, a pipeline that doubles after it drains and falls back to
//     one request when an update adds nothing, updates on a drained
//     queue, a Have of a wanted piece or a newly wanted piece, stealing
//     between connections);
//   - TCP's congestion window: slow start, and again after a connection
//     idles for a retransmission timeout; no losses;
//   - a piece is shareable after its last byte plus its hash time
//     (-hash MB/s); Have and reveal messages wait in the same port
//     queues, the seeder's reveal sees what clients hold at once; the
//     picker runs every -picker, the reveal every -reveal and at the
//     next step after a client completes a piece.
//
// It prints T/(F/B): the time until every client holds every piece over
// one copy at the link rate, the seeder's bytes sent over the image, the
// clients' fraction of time below 90 % of the link rate (100 ms bins, as
// bench/flow.py), the endgame (last client done minus first) and the mean
// fraction of time the clients' downlinks and uplinks are busy.
//
//	go run ./bench/swarmsim -n 2,4,8 -pieces 295 -rate 100
//	go run ./bench/swarmsim -n 1000 -pieces 3000 -rate 100 -conns 16 -dt 100ms -picker 1s -reveal-min 500ms
//
// Not modelled: CPU (the LAN lab's two cores), TCP's losses and
// retransmission timeouts (many flows in one small FIFO), a disk's several
// torrents (one connection per torrent and peer), cancels in flight when
// a request is stolen, and the library's write-buffer rule that defers
// request updates. Its calibration against the LAN lab is in
// docs/benchmarks.md (round five).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"ezio/engine"
)

// strategy: the benchmark's knobs (EZIO_PICKER_RAREST=0,
// EZIO_REVEAL_WINDOW_MIB, ...), read as ezio's command line reads them.
var strategy = engine.StrategyFromEnv()

type config struct {
	n, pieces, conns, cacheMiB   int
	pieceMiB, rateMbit, hashMB   float64
	hol                          float64
	dt, pickerEvery, revealEvery time.Duration
	revealMin, rtt, queue        time.Duration
	seed                         uint64
	noReveal, slowStart          bool
	once                         int // -once W: the seeder policy under test
	fresh                        int // -fresh K: the start policy under test
	trace                        bool
}

func main() {
	var c config
	var ns string
	flag.StringVar(&ns, "n", "8", "clients (comma separated for several runs)")
	flag.IntVar(&c.pieces, "pieces", 295, "pieces in the image")
	flag.Float64Var(&c.pieceMiB, "piece-mib", 1, "piece length in MiB")
	flag.Float64Var(&c.rateMbit, "rate", 100, "every link's goodput, Mbit/s, each way")
	chunkKiB := flag.Int("chunk-kib", 16, "request size in KiB (ezio rooms: 64, engine.RoomChunkSize)")
	flag.IntVar(&c.conns, "conns", 16, "connections per client to other clients (about)")
	flag.IntVar(&c.cacheMiB, "cache", 0, "--cache-size of the clients (0: the default)")
	flag.Float64Var(&c.hashMB, "hash", 300, "piece verification rate, MB/s")
	flag.DurationVar(&c.rtt, "rtt", time.Millisecond, "a request's round trip through empty queues")
	flag.DurationVar(&c.queue, "queue", 50*time.Millisecond, "a saturated port's queueing delay (the LAN lab: a FIFO of 50 ms at the rate)")
	flag.DurationVar(&c.dt, "dt", 20*time.Millisecond, "time step")
	flag.DurationVar(&c.pickerEvery, "picker", 200*time.Millisecond, "picker interval (ezio: 200ms)")
	flag.DurationVar(&c.revealEvery, "reveal", 100*time.Millisecond, "reveal interval (ezio: 100ms, and on a client's new piece)")
	flag.DurationVar(&c.revealMin, "reveal-min", 0, "least time between reveal steps, also when a client completed a piece (0: a step each dt; for N in the hundreds, where a step costs N x pieces)")
	flag.BoolVar(&c.slowStart, "slow-start", true, "model TCP's congestion window: slow start, and again after idle")
	flag.Float64Var(&c.hol, "hol", 3, "round trips a client's request waits behind its own upload to the same peer: the socket buffers (0: none)")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed")
	flag.BoolVar(&c.noReveal, "no-reveal", false, "the seeder shows every piece to every client (no reveal)")
	flag.IntVar(&c.once, "once", 0, "instead of ezio's reveal, a seeder that sends every piece once: each client has up to W pieces revealed and not yet held, each piece revealed to one client only, in random order (a design under test, not ezio's code)")
	flag.IntVar(&c.fresh, "fresh", 0, "a design under test, not ezio's code: the seeder reveals to at most K clients that hold nothing at a time; the others start from peers (0: ezio's reveal, every client at once)")
	flag.BoolVar(&c.trace, "trace", false, "print the swarm's state every second (to stderr)")
	flag.Parse()
	chunk = float64(*chunkKiB << 10)
	fmt.Printf("| N | pieces | piece MiB | Mbit/s | conns | T s | F/B s | T/(F/B) | seeder sent × image | clients below link rate | endgame s | clients' downlink busy | clients' uplink busy | first shareable s | wall s |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range strings.Split(ns, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "swarmsim: bad -n", f)
			os.Exit(2)
		}
		c.n = n
		start := time.Now()
		r := run(c)
		fmt.Printf("| %d | %d | %g | %g | %d | %.1f | %.1f | %.3f | %.3f | %.2f | %.1f | %.2f | %.2f | %.2f | %.0f |\n",
			n, c.pieces, c.pieceMiB, c.rateMbit, c.conns, r.T, r.FB, r.T/r.FB, r.seederSent, r.below, r.endgame,
			r.downBusy, r.upBusy, r.firstShare, time.Since(start).Seconds())
	}
}
