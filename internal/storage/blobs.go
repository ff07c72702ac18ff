package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"

	"github.com/aios-go/aios/api"
)

// chunkSize is how blobs are cut in the database: large enough that a big file costs few
// rows, small enough that reading one never holds much memory.
const chunkSize = 1 << 20

// content is what a write stores: bytes read from the caller, or, for a rollback, a
// blob already in the store (stored set, no bytes).
type content struct {
	sha    string
	size   int64
	stored bool
	mem    []byte   // the bytes, when they fit in one chunk
	file   *os.File // otherwise a temporary copy
}

// spool reads r to its end, up to limit bytes, hashing as it goes. Contents larger than
// a chunk wait in a temporary file, so a big write never sits whole in memory and the
// database transaction starts only once the bytes are known to be complete and in
// bounds: nothing is half-written when the caller's stream fails or runs over.
func spool(r io.Reader, limit int64) (*content, error) {
	h := sha256.New()
	var buf bytes.Buffer
	n, err := io.Copy(io.MultiWriter(h, &buf), io.LimitReader(r, min(limit+1, chunkSize+1)))
	if err != nil {
		return nil, readErr(err)
	}
	c := &content{size: n}
	if n > limit {
		return nil, tooLarge(limit)
	}
	if n <= chunkSize {
		c.mem = buf.Bytes()
		c.sha = hex.EncodeToString(h.Sum(nil))
		return c, nil
	}
	f, err := os.CreateTemp("", "aios-storage-*")
	if err != nil {
		return nil, internal(err, "spool a large write")
	}
	os.Remove(f.Name()) // unlinked now, so no crash leaves it behind
	c.file = f
	if _, err := f.Write(buf.Bytes()); err != nil {
		c.close()
		return nil, internal(err, "spool a large write")
	}
	more, err := io.Copy(io.MultiWriter(h, f), io.LimitReader(r, limit+1-n))
	if err != nil {
		c.close()
		return nil, readErr(err)
	}
	c.size += more
	if c.size > limit {
		c.close()
		return nil, tooLarge(limit)
	}
	c.sha = hex.EncodeToString(h.Sum(nil))
	return c, nil
}

func bytesContent(b []byte) *content {
	s := sha256.Sum256(b)
	return &content{sha: hex.EncodeToString(s[:]), size: int64(len(b)), mem: b}
}

func (c *content) close() {
	if c.file != nil {
		c.file.Close()
		c.file = nil
	}
}

// reader replays the spooled bytes from the start.
func (c *content) reader() io.Reader {
	if c.file != nil {
		return io.NewSectionReader(c.file, 0, c.size)
	}
	return bytes.NewReader(c.mem)
}

func tooLarge(limit int64) error {
	return api.Errorf(api.CallerTooLarge, "the file is larger than the %d-byte limit (storage max_file_bytes); split it into smaller files", limit)
}

func readErr(err error) error {
	var e *api.Error
	if errors.As(err, &e) {
		return err
	}
	return api.Wrap(api.CallerBadRequest, err, "reading the content to write failed; nothing was written")
}

// refBlob adds one reference to c's blob, storing its bytes if no version held them yet.
// A content without bytes (a rollback) must already be stored.
func refBlob(ctx context.Context, t tx, c *content) error {
	if c.stored {
		n, err := t.Exec(ctx, `UPDATE blobs SET refs = refs + 1 WHERE sha = $1`, c.sha)
		if err != nil {
			return err
		}
		if n == 0 {
			return api.Errorf(api.CallerNotFound, "that version's content is no longer kept; list the versions again and pick another")
		}
		return nil
	}
	// Whoever inserts the row brings the chunks; in PostgreSQL a concurrent inserter of
	// the same content waits on this row and then finds it.
	inserted, err := t.Exec(ctx, `INSERT INTO blobs (sha, size, refs) VALUES ($1, $2, 1) ON CONFLICT (sha) DO NOTHING`, c.sha, c.size)
	if err != nil {
		return err
	}
	if inserted == 0 {
		_, err := t.Exec(ctx, `UPDATE blobs SET refs = refs + 1 WHERE sha = $1`, c.sha)
		return err
	}
	if c.size == 0 {
		return nil
	}
	r := c.reader()
	buf := make([]byte, min(c.size, chunkSize))
	for seq := int64(0); ; seq++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := t.Exec(ctx, `INSERT INTO chunks (sha, seq, data) VALUES ($1, $2, $3)`, c.sha, seq, buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// unrefBlob drops one reference and deletes the blob when none is left.
func unrefBlob(ctx context.Context, t tx, sha string) error {
	if sha == "" {
		return nil
	}
	var refs int64
	err := t.QueryRow(ctx, `UPDATE blobs SET refs = refs - 1 WHERE sha = $1 RETURNING refs`, sha).Scan(&refs)
	if errors.Is(err, errNoRows) {
		return nil
	}
	if err != nil || refs > 0 {
		return err
	}
	if _, err := t.Exec(ctx, `DELETE FROM chunks WHERE sha = $1`, sha); err != nil {
		return err
	}
	_, err = t.Exec(ctx, `DELETE FROM blobs WHERE sha = $1`, sha)
	return err
}

// blobReader streams a blob one chunk at a time. The first chunk is fetched before it is
// returned, so small files (most of them) cannot fail after Read has succeeded.
type blobReader struct {
	ctx  context.Context
	q    querier
	sha  string
	size int64
	seq  int64
	read int64
	buf  []byte
}

func openBlob(ctx context.Context, q querier, sha string, size int64) (*blobReader, error) {
	b := &blobReader{ctx: ctx, q: q, sha: sha, size: size}
	if size > 0 {
		if err := b.next(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *blobReader) next() error {
	err := b.q.QueryRow(b.ctx, `SELECT data FROM chunks WHERE sha = $1 AND seq = $2`, b.sha, b.seq).Scan(&b.buf)
	if errors.Is(err, errNoRows) {
		return api.Errorf(api.CallerNotFound, "the file's content was removed while it was being read (deleted or its history pruned); read it again")
	}
	if err != nil {
		return internal(err, "read file content")
	}
	b.seq++
	return nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	if len(b.buf) == 0 {
		if b.read >= b.size {
			return 0, io.EOF
		}
		if err := b.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	b.read += int64(n)
	return n, nil
}

func (b *blobReader) Close() error { return nil }
