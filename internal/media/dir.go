package media

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir keeps media as files in a directory on the server's disk (stage 1).
type Dir struct {
	path string
}

// NewDir returns a Store in path, creating the directory if needed.
func NewDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("media dir: %w", err)
	}
	return &Dir{path: path}, nil
}

// Put writes the file under a temporary name and renames it into place, so
// a reader never sees half a file.
func (d *Dir) Put(_ context.Context, name, _ string, data []byte) error {
	f, err := os.CreateTemp(d.path, ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(d.path, name))
}

// Get reads a file; its type follows from the extension Media gave it.
func (d *Dir) Get(_ context.Context, name string) ([]byte, string, error) {
	data, err := os.ReadFile(filepath.Join(d.path, filepath.Base(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", ErrNotFound
	}
	return data, contentTypeOf(name), err
}

// contentTypeOf names the type of a file by the extensions Media writes.
func contentTypeOf(name string) string {
	switch filepath.Ext(name) {
	case ".png":
		return "image/png"
	case ".jpg":
		return "image/jpeg"
	}
	return "application/octet-stream"
}
