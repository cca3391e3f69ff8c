package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 keeps media in a bucket of an S3-compatible object store (stage 2 and
// up: every node sees the same files). It speaks the S3 API through
// minio-go, which works with AWS S3, MinIO, SeaweedFS, Ceph and others.
type S3 struct {
	client *minio.Client
	bucket string
}

// ParseS3URL reads --media-url: s3://KEY:SECRET@host[:port]/bucket, with
// ?tls=false for plain HTTP (a store on the same network) and &region=.
func ParseS3URL(raw string) (endpoint, bucket, key, secret, region string, secure bool, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", "", "", "", false, errors.New("media URL must be s3://KEY:SECRET@host[:port]/bucket")
	}
	bucket = strings.Trim(u.Path, "/")
	if bucket == "" || strings.Contains(bucket, "/") {
		return "", "", "", "", "", false, errors.New("media URL must name one bucket: s3://KEY:SECRET@host[:port]/bucket")
	}
	key = u.User.Username()
	secret, _ = u.User.Password()
	q := u.Query()
	return u.Host, bucket, key, secret, q.Get("region"), q.Get("tls") != "false", nil
}

// NewS3 connects to the bucket --media-url names and checks that it
// exists (creating it if it does not), so a wrong setting fails at start.
func NewS3(ctx context.Context, rawURL string) (*S3, error) {
	endpoint, bucket, key, secret, region, secure, err := ParseS3URL(rawURL)
	if err != nil {
		return nil, err
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(key, secret, ""),
		Secure: secure,
		Region: region,
	})
	if err != nil {
		return nil, fmt.Errorf("media store: %w", err)
	}
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("media store %s/%s: %w", endpoint, bucket, err)
	}
	if !ok {
		if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region}); err != nil {
			return nil, fmt.Errorf("media store: create bucket %s: %w", bucket, err)
		}
	}
	return &S3{client: client, bucket: bucket}, nil
}

// Put uploads the object, marked immutable for any cache in front of the
// store.
func (s *S3) Put(ctx context.Context, name, contentType string, data []byte) error {
	_, err := s.client.PutObject(ctx, s.bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:  contentType,
		CacheControl: "public, max-age=31536000, immutable",
	})
	return err
}

// Get downloads the object.
func (s *S3) Get(ctx context.Context, name string) ([]byte, string, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", err
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, MaxAvatarBytes+1))
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, "", ErrNotFound
		}
		return nil, "", err
	}
	return data, contentTypeOf(name), nil
}
