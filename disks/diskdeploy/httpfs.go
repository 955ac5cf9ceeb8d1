package diskdeploy

// An image directory read over HTTP from the seeder that serves it.

import (
	"bytes"
	"context"
	"io/fs"
	"path"
	"time"

	"ezio/engine"
)

// HTTPFS reads an image directory's files from the seeder's HTTP server:
// GET Base/<name>.
type HTTPFS struct {
	Ctx  context.Context
	Base string
}

func (h HTTPFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	// engine's errors name the URL and say what went wrong (an outage
	// is exit 3, a missing file fs.ErrNotExist).
	b, err := engine.FetchFile(h.Ctx, h.Base+"/"+name, time.Minute, 64<<20)
	if err != nil {
		return nil, err
	}
	return &memFile{name: name, Reader: bytes.NewReader(b), size: int64(len(b))}, nil
}

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f}, nil }
func (f *memFile) Close() error               { return nil }

type memInfo struct{ f *memFile }

func (i memInfo) Name() string       { return path.Base(i.f.name) }
func (i memInfo) Size() int64        { return i.f.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
