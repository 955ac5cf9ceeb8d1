// Package extent is the engine's storage: a torrent's pieces read and
// written straight on a target (block device, image file or directory of
// extent files) at the extents' disk offsets, through a
// torrentfile.Layout.
//
// A Storage is the library's storage.ClientImpl for one torrent. A
// client's storage hashes pieces as their chunks arrive and holds them in
// memory within a Budget shared by a session's deploys (piecehash.go,
// heldbudget.go); it records completion (Resume) only after an fdatasync
// of the data it covers, and trusts no record until the piece is hashed
// again from the target (resume.go). A seeder's storage checks each piece
// the first time it serves it and refuses a bad one (servecheck.go).
// Targets are opened exclusively (exclusive.go); rate caps are paced where
// data is read for serving and written from peers.
//
// The package knows nothing of jobs, sessions or peers: the engine
// creates one Storage per job, attaches its logger and failure callback,
// and reads its counters.
package extent
