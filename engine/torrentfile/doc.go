// Package torrentfile is the torrent format as ezio reads and writes it,
// free of I/O beyond byte slices: the strict, bounded bencode check that
// runs before any torrent is decoded, the extent layout (files named by
// hex disk offset, as partclone -T, EZIO and Clonezilla write them) and
// its mapping of the torrent's byte stream onto the disk, and the size
// syntax of the command line. The engine's storage, build and verify sit
// on it; it imports nothing of ezio.
package torrentfile
