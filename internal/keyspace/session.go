package keyspace

import (
	"fmt"
	"strconv"
)

// The session record (HASH at Keys.Session): the Discord session a shard's
// owner RESUMEs, and the last committed seq, its resume point.
const (
	FieldSessionID = "session_id"
	FieldSeq       = "seq"
	FieldResumeURL = "resume_url"
	FieldToken     = "token" // the fencing token of the last write
)

// SessionFields are the record's fields in the order ParseSession reads them.
var SessionFields = []string{FieldSessionID, FieldSeq, FieldResumeURL}

// SessionRecord is a shard's session record; the zero value means none.
type SessionRecord struct {
	SessionID string
	Sequence  int
	ResumeURL string
}

// ParseSession reads an HMGET of SessionFields. A missing field is empty; a
// seq that is not a number is ErrCorrupt.
func ParseSession(vals []any) (SessionRecord, error) {
	var r SessionRecord
	if len(vals) != len(SessionFields) {
		return SessionRecord{}, fmt.Errorf("%w: session record has %d fields", ErrCorrupt, len(vals))
	}
	r.SessionID, _ = vals[0].(string)
	if v, ok := vals[1].(string); ok {
		seq, err := strconv.Atoi(v)
		if err != nil || seq < 0 {
			return SessionRecord{}, fmt.Errorf("%w: session seq %q", ErrCorrupt, v)
		}
		r.Sequence = seq
	}
	r.ResumeURL, _ = vals[2].(string)
	return r, nil
}
