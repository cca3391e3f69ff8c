package auth

import "context"

type ctxKey struct{}

// WithClaims returns ctx carrying the verified token of the signed-in user.
func WithClaims(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// ClaimsFrom returns the verified token of the request's user, if any.
func ClaimsFrom(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(Claims)
	return c, ok && c.UserID != 0
}

// WithUserID returns ctx carrying the signed-in user's id (and no token).
func WithUserID(ctx context.Context, id int64) context.Context {
	return WithClaims(ctx, Claims{UserID: id})
}

// UserID returns the signed-in user's id, or 0 for an anonymous request.
func UserID(ctx context.Context) int64 {
	c, _ := ctx.Value(ctxKey{}).(Claims)
	return c.UserID
}
