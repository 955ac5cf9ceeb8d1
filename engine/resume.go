package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
)

// resumeState is the record of which pieces are on the target and durable.
// It is written only after an fdatasync of the data it covers, atomically
// (temporary file, fsync, rename), and removed once a deploy completes so
// that a later deploy onto a disk changed in between starts clean.
type resumeState struct {
	path     string
	infoHash metainfo.Hash
	bits     []bool
}

const resumeMagic = "EZIORSM1"

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

// loadResume reads the record; a missing, foreign or damaged one gives an
// empty state (everything is fetched again, never trusted wrongly).
func loadResume(path string, ih metainfo.Hash, numPieces int) (*resumeState, string) {
	st := &resumeState{path: path, infoHash: ih, bits: make([]bool, numPieces)}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, ""
	}
	if err != nil {
		return st, fmt.Sprintf("ignoring resume record %s: %v", path, err)
	}
	want := len(resumeMagic) + 20 + 4 + (numPieces+7)/8
	if len(data) != want || !bytes.HasPrefix(data, []byte(resumeMagic)) {
		return st, fmt.Sprintf("ignoring resume record %s: not a record for this image", path)
	}
	rest := data[len(resumeMagic):]
	if !bytes.Equal(rest[:20], ih[:]) || int(binary.BigEndian.Uint32(rest[20:24])) != numPieces {
		return st, fmt.Sprintf("ignoring resume record %s: it belongs to another image", path)
	}
	bm := rest[24:]
	for i := range st.bits {
		st.bits[i] = bm[i/8]&(0x80>>(i%8)) != 0
	}
	return st, ""
}

func (st *resumeState) count() (n int) {
	for _, b := range st.bits {
		if b {
			n++
		}
	}
	return
}

func (st *resumeState) save() error {
	buf := make([]byte, 0, len(resumeMagic)+24+(len(st.bits)+7)/8)
	buf = append(buf, resumeMagic...)
	buf = append(buf, st.infoHash[:]...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(st.bits)))
	bm := make([]byte, (len(st.bits)+7)/8)
	for i, b := range st.bits {
		if b {
			bm[i/8] |= 0x80 >> (i % 8)
		}
	}
	buf = append(buf, bm...)
	if err := os.MkdirAll(filepath.Dir(st.path), 0o755); err != nil {
		return fmt.Errorf("saving resume record: %w", err)
	}
	tmp := st.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("saving resume record: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("saving resume record: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving resume record: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving resume record: %w", err)
	}
	if err := os.Rename(tmp, st.path); err != nil {
		return fmt.Errorf("saving resume record: %w", err)
	}
	if d, err := os.Open(filepath.Dir(st.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (st *resumeState) remove() error {
	err := os.Remove(st.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
