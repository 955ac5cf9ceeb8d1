package extent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"ezio/engine/atomicfile"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/anacrolix/torrent/metainfo"
)

// Resume is the record of which pieces were on the target and
// durable when it was written. It is only a hint: every piece it claims is
// hashed from the target again before it counts (see completionBook). It
// is bound to the torrent and to the target's identity (identityOf), is
// written only after an fdatasync of the data it covers, atomically
// (temporary file, fsync, rename), and removed once a deploy completes.
type Resume struct {
	path     string
	infoHash metainfo.Hash
	identity string
	bits     []bool
}

// resumeMagic names the record format: v2 adds the target's identity and
// a checksum. A v1 record (EZIORSM1) is dropped as foreign.
const resumeMagic = "EZIORSM2"

// ResumePath is where the completion record for a target lives: beside a
// file, inside a directory, and under the state directory for a device
// (EZIO_STATE_DIR, default /var/lib/ezio).
func ResumePath(target string, kind TargetKind, ih metainfo.Hash) string {
	switch kind {
	case TargetFile:
		return target + ".ezio-resume"
	case TargetDir:
		return filepath.Join(target, ".ezio-resume")
	}
	dir := os.Getenv("EZIO_STATE_DIR")
	if dir == "" {
		dir = "/var/lib/ezio"
	}
	name := strings.ReplaceAll(strings.TrimPrefix(filepath.Clean(target), "/"), "/", "_")
	return filepath.Join(dir, "resume", name+"-"+ih.HexString()[:12]+".resume")
}

// LoadResume reads the record; a missing, foreign, damaged one, or one
// written for another target (identity differs) gives an empty state:
// everything is fetched again, never trusted wrongly. The string is a
// line to log when a record was dropped.
func LoadResume(path string, ih metainfo.Hash, numPieces int, identity string) (*Resume, string) {
	st := &Resume{path: path, infoHash: ih, identity: identity, bits: make([]bool, numPieces)}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, ""
	}
	if err != nil {
		return st, fmt.Sprintf("dropping resume record %s: %v", path, err)
	}
	rec, err := decodeResume(data)
	if err != nil {
		return st, fmt.Sprintf("dropping resume record %s: %v; every piece is fetched again", path, err)
	}
	if rec.infoHash != ih || len(rec.bits) != numPieces {
		return st, fmt.Sprintf("dropping resume record %s: it belongs to another image", path)
	}
	if identity == "" || rec.identity != identity {
		return st, fmt.Sprintf("dropping resume record %s: it was written for another disk at this path (then %q, now %q); every piece is fetched again", path, rec.identity, identity)
	}
	st.bits = rec.bits
	return st, ""
}

// ResumeRecordPieces counts the pieces a resume record claims (for tests
// and diagnostics).
func ResumeRecordPieces(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	rec, err := decodeResume(data)
	if err != nil {
		return 0, err
	}
	return rec.Count(), nil
}

// Record layout, big-endian: magic[8] infohash[20] pieces u32 idlen u16
// identity[idlen] bitmap[(pieces+7)/8] crc32(IEEE, all before) u32.
func encodeResume(ih metainfo.Hash, identity string, bits []bool) []byte {
	buf := make([]byte, 0, len(resumeMagic)+26+len(identity)+(len(bits)+7)/8+4)
	buf = append(buf, resumeMagic...)
	buf = append(buf, ih[:]...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(bits)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(identity)))
	buf = append(buf, identity...)
	bm := make([]byte, (len(bits)+7)/8)
	for i, b := range bits {
		if b {
			bm[i/8] |= 0x80 >> (i % 8)
		}
	}
	buf = append(buf, bm...)
	return binary.BigEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf))
}

func decodeResume(data []byte) (*Resume, error) {
	const head = len(resumeMagic) + 20 + 4 + 2
	if len(data) < head+4 || !bytes.HasPrefix(data, []byte(resumeMagic)) {
		return nil, errors.New("not an ezio resume record of this version")
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("the record is damaged (checksum mismatch)")
	}
	rec := &Resume{}
	copy(rec.infoHash[:], body[8:28])
	n := int(binary.BigEndian.Uint32(body[28:32]))
	idLen := int(binary.BigEndian.Uint16(body[32:34]))
	if len(body) != head+idLen+(n+7)/8 {
		return nil, errors.New("the record is damaged (wrong length)")
	}
	rec.identity = string(body[head : head+idLen])
	bm := body[head+idLen:]
	rec.bits = make([]bool, n)
	for i := range rec.bits {
		rec.bits[i] = bm[i/8]&(0x80>>(i%8)) != 0
	}
	return rec, nil
}

// Claims tells whether the record claims piece i.
func (st *Resume) Claims(i int) bool { return st.bits[i] }

// Path is where the record is kept.
func (st *Resume) Path() string { return st.path }

func (st *Resume) Count() (n int) {
	for _, b := range st.bits {
		if b {
			n++
		}
	}
	return
}

// save writes the record for bits. A failure leaves the previous record
// (or none) in place and no temporary file behind.
func (st *Resume) save(bits []bool) (err error) {
	buf := encodeResume(st.infoHash, st.identity, bits)
	defer func() {
		if err != nil {
			err = fmt.Errorf("saving resume record %s: %w", st.path, err)
		}
	}()
	if err := os.MkdirAll(filepath.Dir(st.path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(st.path, buf, 0o644)
}

func (st *Resume) Remove() error {
	err := os.Remove(st.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// pieceMark is what the client knows of one piece.
type pieceMark uint8

const (
	markMissing  pieceMark = iota // not on the target: fetch it
	markClaimed                   // the resume record claims it: hash it from the target
	markUnknown                   // --recheck: hash it from the target
	markComplete                  // hashed good in this run
)

// completionBook is the client's piece bookkeeping, apart from data I/O:
// what was verified in this run, what the record claimed and how that
// turned out, and which verified pieces still wait for a sync before the
// record may claim them. Its mutex is never held across disk I/O.
type completionBook struct {
	mu       sync.Mutex
	marks    []pieceMark
	diskMiss []bool // the last hash failure was a check of data already on the target
	pending  []int  // verified, not yet covered by a sync
	rec      *Resume
	recBits  []bool // what the record should claim (durable and verified)
	recDirty bool   // recBits changed since the last save

	badData map[int]int // hash failures of downloaded data, per piece

	claimed, reverified, refetched int
	onSettled                      func(reverified, refetched int) // when the last claim is settled
}

func newCompletionBook(n int, rec *Resume, recheck bool) *completionBook {
	b := &completionBook{marks: make([]pieceMark, n), diskMiss: make([]bool, n), rec: rec}
	if rec != nil {
		// Claims stay claimed until a hash proves one wrong: they are
		// re-verified in every run anyway, and a run interrupted before
		// re-verifying them must not forget them.
		b.recBits = append([]bool(nil), rec.bits...)
	}
	for i := range b.marks {
		switch {
		case rec != nil && rec.bits[i]:
			b.marks[i] = markClaimed
			b.claimed++
		case recheck:
			b.marks[i] = markUnknown
		}
	}
	return b
}

func (b *completionBook) mark(i int) pieceMark {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.marks[i]
}

// verified records a good hash of piece i.
func (b *completionBook) verified(i int) {
	b.mu.Lock()
	m := b.marks[i]
	var settled func()
	if m == markComplete {
		b.mu.Unlock()
		return
	}
	if m == markClaimed {
		b.reverified++
		settled = b.claimSettled()
	}
	b.marks[i] = markComplete
	if m != markClaimed {
		// A claimed piece was read back from the target and is still
		// claimed; anything else needs a sync before the record says so.
		b.pending = append(b.pending, i)
	}
	b.mu.Unlock()
	if settled != nil {
		settled()
	}
}

// failed records a bad hash of piece i (or the library unmarking it).
func (b *completionBook) failed(i int) {
	b.mu.Lock()
	m := b.marks[i]
	var settled func()
	b.diskMiss[i] = m == markClaimed || m == markUnknown
	if m == markClaimed {
		b.refetched++
		settled = b.claimSettled()
	}
	b.marks[i] = markMissing
	if b.recBits != nil && b.recBits[i] {
		b.recBits[i] = false
		b.recDirty = true
	}
	b.mu.Unlock()
	if settled != nil {
		settled()
	}
}

// claimSettled is called under mu; it returns what to run after unlocking.
func (b *completionBook) claimSettled() func() {
	if b.reverified+b.refetched != b.claimed || b.onSettled == nil {
		return nil
	}
	f, rv, rf := b.onSettled, b.reverified, b.refetched
	return func() { f(rv, rf) }
}

// takePending hands the pieces waiting for a sync to the flusher.
func (b *completionBook) takePending() ([]int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pending
	b.pending = nil
	return p, b.recDirty
}

// putBack returns pieces whose sync failed.
func (b *completionBook) putBack(p []int) {
	b.mu.Lock()
	b.pending = append(p, b.pending...)
	b.mu.Unlock()
}

// synced lets the record claim pieces now durable; it returns a copy of
// what to save, or nil when nothing is persisted.
func (b *completionBook) synced(p []int) (*Resume, []bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rec == nil {
		return nil, nil
	}
	for _, i := range p {
		if b.marks[i] == markComplete && !b.recBits[i] {
			b.recBits[i] = true
			b.recDirty = true
		}
	}
	if !b.recDirty {
		return nil, nil
	}
	b.recDirty = false
	return b.rec, append([]bool(nil), b.recBits...)
}

// saveFailed marks the record as still to be written.
func (b *completionBook) saveFailed() {
	b.mu.Lock()
	b.recDirty = true
	b.mu.Unlock()
}

// durable tells whether every piece is verified and no sync or record
// write is outstanding.
func (b *completionBook) durable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) > 0 || (b.rec != nil && b.recDirty) {
		return false
	}
	for _, m := range b.marks {
		if m != markComplete {
			return false
		}
	}
	return true
}

func (b *completionBook) counts() (reverified, refetched int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reverified, b.refetched
}
