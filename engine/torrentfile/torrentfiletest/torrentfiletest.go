// Package torrentfiletest makes torrents for tests of the packages that
// serve or read them.
package torrentfiletest

import (
	"crypto/sha1"
	"fmt"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// Fake is a torrent of pieces*pieceLen bytes in one extent, with
// made-up hashes: enough for the server, which never reads the data.
func Fake(t testing.TB, name string, pieces int, pieceLen int64) *metainfo.MetaInfo {
	t.Helper()
	hashes := make([][20]byte, pieces)
	for i := range hashes {
		hashes[i] = sha1.Sum([]byte(fmt.Sprintf("%s %d", name, i)))
	}
	// One extent at 1 MiB, named as torrentfile.FormatOffset names it
	// (this package imports nothing of ezio, so torrentfile's own tests
	// can use it).
	info := metainfo.Info{Name: name, PieceLength: pieceLen,
		Files: []metainfo.FileInfo{File(fmt.Sprintf("%032x", 1<<20), int64(pieces)*pieceLen)}}
	for _, h := range hashes {
		info.Pieces = append(info.Pieces, h[:]...)
	}
	b, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return &metainfo.MetaInfo{InfoBytes: b}
}

// Info is an info dictionary named sda1 of the given files, with zeroed
// piece hashes of the right count.
func Info(files []metainfo.FileInfo, pieceLength int64) *metainfo.Info {
	info := &metainfo.Info{Name: "sda1", PieceLength: pieceLength, Files: files}
	info.Pieces = make([]byte, 20*((info.TotalLength()+pieceLength-1)/pieceLength))
	return info
}

// File is one torrent file: an extent called name of n bytes.
func File(name string, n int64) metainfo.FileInfo {
	return metainfo.FileInfo{Path: []string{name}, Length: n}
}
