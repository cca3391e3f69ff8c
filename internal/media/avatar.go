package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // decoders for image.Decode: what browsers upload
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

// Limits of an uploaded avatar. The file size bounds the upload; the pixel
// count bounds the memory a decode takes (a small file can declare a huge
// image), and is checked from the header before decoding.
const (
	MaxAvatarBytes  = 5 << 20
	maxAvatarPixels = 40_000_000 // e.g. 8000 × 5000
	AvatarSize      = 256        // stored avatars are AvatarSize × AvatarSize
)

// ImageError says why an upload is not a usable picture; its text is meant
// for the person who sent it.
type ImageError struct{ Reason string }

func (e *ImageError) Error() string { return e.Reason }

// SaveAvatar checks an uploaded picture by its content (PNG, JPEG, GIF or
// WebP, whatever the file name or the browser claim), decodes it, crops it
// to a centred square, scales it to AvatarSize and encodes it again (PNG
// when it has transparency, JPEG otherwise): nothing of the original file
// but its pixels survives, so no metadata (location, camera) and no
// crafted bytes are kept. It returns the path the image is served at.
func (m *Media) SaveAvatar(ctx context.Context, upload io.Reader) (string, error) {
	if m.store == nil {
		return "", errors.New("media: uploads are not configured")
	}
	data, err := io.ReadAll(io.LimitReader(upload, MaxAvatarBytes+1))
	if err != nil {
		return "", fmt.Errorf("read upload: %w", err)
	}
	if len(data) > MaxAvatarBytes {
		return "", &ImageError{fmt.Sprintf("is too large (maximum is %d MB)", MaxAvatarBytes>>20)}
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", &ImageError{"is not a PNG, JPEG, GIF or WebP picture"}
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width*cfg.Height > maxAvatarPixels {
		return "", &ImageError{fmt.Sprintf("has too many pixels (%d × %d)", cfg.Width, cfg.Height)}
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return "", &ImageError{"could not be read as a " + format + " picture"}
	}
	out, ext, err := encodeAvatar(square(src))
	if err != nil {
		return "", fmt.Errorf("encode avatar: %w", err)
	}
	name := hashOf(out) + ext
	if err := m.store.Put(ctx, name, contentTypeOf(name), out); err != nil {
		return "", fmt.Errorf("store avatar: %w", err)
	}
	return Prefix + name, nil
}

// square returns the centred square of src scaled to AvatarSize.
func square(src image.Image) *image.NRGBA {
	b := src.Bounds()
	side := min(b.Dx(), b.Dy())
	crop := image.Rect(0, 0, side, side).Add(b.Min).Add(image.Pt((b.Dx()-side)/2, (b.Dy()-side)/2))
	dst := image.NewNRGBA(image.Rect(0, 0, AvatarSize, AvatarSize))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, crop, draw.Src, nil)
	return dst
}

// encodeAvatar writes img as PNG if any pixel is transparent, else as JPEG.
func encodeAvatar(img *image.NRGBA) ([]byte, string, error) {
	var buf bytes.Buffer
	if !img.Opaque() {
		err := png.Encode(&buf, img)
		return buf.Bytes(), ".png", err
	}
	// JPEG has no alpha: flatten onto white first (the opaque check makes
	// this exact, but keeps the encoder's input well-defined).
	flat := image.NewRGBA(img.Bounds())
	draw.Draw(flat, flat.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(flat, flat.Bounds(), img, image.Point{}, draw.Over)
	err := jpeg.Encode(&buf, flat, &jpeg.Options{Quality: 85})
	return buf.Bytes(), ".jpg", err
}
