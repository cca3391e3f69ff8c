package auth

import "context"

type ctxKey struct{}

// WithUserID returns ctx carrying the signed-in user's id.
func WithUserID(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// UserID returns the signed-in user's id, or 0 for an anonymous request.
func UserID(ctx context.Context) int64 {
	id, _ := ctx.Value(ctxKey{}).(int64)
	return id
}
