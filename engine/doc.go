// Package engine moves disk images over BitTorrent on a closed LAN.
//
// A Session is the one BitTorrent client of a process (listen address,
// tuning, the embedded tracker and image server). It hosts any number of
// Jobs: a seed job serves one torrent from a disk, an image file or an
// extent directory; a deploy job writes one torrent straight onto a target
// at the extents' disk offsets (plus a base offset, for a partition written
// inside a whole disk). Each job owns its storage, piece picker, piece
// reveal and progress sampler, all started and joined by the job's run.
//
// Below it, engine/torrentfile is the torrent format (the bounded bencode
// check, the extent layout and its mapping onto the disk), engine/extent
// the storage (pieces on the target, resume records, the seeder's check
// before serving) and engine/server the seeder's HTTP side (tracker,
// image server, status page); the session wires them to its jobs.
//
// The engine knows nothing of terminals: it publishes Snapshots and Events
// (progress.go) and returns typed errors (errors.go); the wizard and the
// command line word them.
package engine

// Version is reported to peers, in logs and by `ezio version`.
const Version = "0.2.0"
