package engine

import (
	"fmt"
	"strings"
)

// giveUpAfter is how many times one piece may fail its hash check before
// a deploy gives up on it, when no source that never sent bad data has
// it. giveUpAlways is the limit even when such a source exists (the
// library may keep asking a trusted seeder, which is never banned).
const (
	giveUpAfter  = 3
	giveUpAlways = 10
)

// BadDataError ends a deploy whose sources keep sending a piece that
// fails its hash check.
type BadDataError struct {
	BadPiece
	Failures int
	Sources  []string // peers that sent bad data and have the piece
}

func (e *BadDataError) Error() string {
	src := "an unknown source"
	if len(e.Sources) > 0 {
		src = strings.Join(e.Sources, ", ")
	}
	return fmt.Sprintf("giving up: %s failed its hash check %d times; the data came from %s and no other source has the piece: the source's copy is damaged (check it with ezio torrent verify)", e.BadPiece, e.Failures, src)
}

// pieceFailedHash is called (from the snapshot loop) each time a piece of
// downloaded data fails its hash check; it fails the job once the piece
// has failed too often with no clean source for it.
func (j *Job) pieceFailedHash(i int) {
	if j.st.DiskCheckFailed(i) {
		return
	}
	n, client := j.st.BadDataSeen(i)
	if !client {
		return
	}
	if n < giveUpAfter {
		return
	}
	var liars []string
	clean := 0
	for _, pc := range j.t.PeerConns() {
		if !pc.PeerPieces().Contains(uint32(i)) {
			continue
		}
		name, _ := pc.PeerClientName.Load().(string)
		if name == "" {
			name = clientFromPeerID(pc.PeerID)
		}
		if st := pc.Stats(); st.PiecesDirtiedBad.Int64() > 0 {
			liars = append(liars, fmt.Sprintf("%s (%s)", pc.RemoteAddr, name))
		} else {
			clean++
		}
	}
	if clean > 0 && n < giveUpAlways {
		return
	}
	off, file := j.layout.PieceWhere(i)
	err := &BadDataError{BadPiece: BadPiece{Index: i, Offset: off, File: file, Reason: "fails its hash check"}, Failures: n, Sources: liars}
	j.log.Error(err.Error())
	j.fail(err)
}

// BadPieces lists the pieces a seeder found bad on its source and refuses
// to serve (empty on a client). For the seeder's snapshot, dashboard and
// /images.json.
func (j *Job) BadPieces() []BadPiece { return j.st.BadPieces() }

// ResumeCounts tells, on a client, how many pieces the resume record
// claimed were hashed good from the target in this run (re-verified) and
// how many failed and are fetched again (re-fetched).
func (j *Job) ResumeCounts() (reverified, refetched int) { return j.st.ResumeCounts() }
