package engine

import "testing"

// The simulator's view of the seeder's reveal: two fresh clients each get
// one piece at first (a client holding nothing gets one at a time), and
// not the same one; once a client holds a piece, its window opens.
func TestRevealPlannerFreshClients(t *testing.T) {
	const n, plen = 64, 1 << 20
	r := NewRevealPlanner(n, plen, n*plen, 2, Strategy{})
	have := [][]bool{make([]bool, n), make([]bool, n)}
	got := r.Step(have, make([]int32, n), false)
	if len(got[0]) != 1 || len(got[1]) != 1 {
		t.Fatalf("fresh clients got %v, want one piece each", got)
	}
	if got[0][0] == got[1][0] {
		t.Errorf("both fresh clients got piece %d", got[0][0])
	}
	if !r.Revealed(0, got[0][0]) || r.Revealed(0, got[1][0]) {
		t.Error("Revealed disagrees with what Step returned")
	}
	have[0][got[0][0]] = true
	holders := make([]int32, n)
	holders[got[0][0]] = 1
	more := r.Step(have, holders, false)
	if len(more[0]) < 2 {
		t.Errorf("a client holding a piece got %d more, want its window (2 MiB: two pieces)", len(more[0]))
	}
}

// The simulator's picker: what is held wants nothing, what was started
// comes first, what a peer holds is wanted.
func TestPiecePickerChoose(t *testing.T) {
	const n = 8
	pp := NewPiecePicker(n, 1<<20, 0, Strategy{})
	complete, partial, peerHave := make([]bool, n), make([]bool, n), make([]int, n)
	complete[0], partial[1], peerHave[2] = true, true, 1
	w := pp.Choose(complete, partial, peerHave, 0)
	if w[0] != 0 || w[1] <= w[3] || w[2] == 0 {
		t.Errorf("priorities %v: want none for held 0, 1 (started) above 3, 2 (a peer holds it) wanted", w)
	}
	if UnverifiedBudget(n, 1<<20, 0) <= 0 {
		t.Error("no unverified budget")
	}
}
