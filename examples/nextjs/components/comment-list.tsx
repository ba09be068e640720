import { formatTime, type Comment } from "@/lib/api";

export type Moderation = {
  /** The streamer's own name: no time-out or ban buttons on their lines. */
  self: string;
  onDelete: (id: number) => void;
  /** `seconds` null: a ban until lifted; 600: the 10-minute time-out. */
  onBan: (username: string, seconds: number | null) => void;
};

/** Oldest first, as a chat reads; each line with its time. The streamer's list has moderation buttons. */
export function CommentList({ comments, moderation }: { comments: Comment[]; moderation?: Moderation }) {
  if (comments.length === 0) return <p className="muted">No comments yet.</p>;
  return (
    <ul className="comments" data-testid="comments">
      {comments.map((c) => (
        <li key={c.id} data-comment-id={c.id}>
          <time className="muted" dateTime={c.created_at} data-testid="comment-time">
            {formatTime(c.created_at)}
          </time>{" "}
          <b>{c.author}</b> <span className="comment-text">{c.text}</span>
          {moderation && (
            <span className="comment-actions">
              <button className="link" onClick={() => moderation.onDelete(c.id)} aria-label={`Delete comment ${c.id}`}>
                delete
              </button>
              {c.author !== moderation.self && (
                <>
                  <button className="link" onClick={() => moderation.onBan(c.author, 600)} data-testid="timeout-user" aria-label={`Time out ${c.author} for 10 minutes`}>
                    time out
                  </button>
                  <button className="link" onClick={() => moderation.onBan(c.author, null)} data-testid="ban-user" aria-label={`Ban ${c.author}`}>
                    ban
                  </button>
                </>
              )}
            </span>
          )}
        </li>
      ))}
    </ul>
  );
}

/** Adds a comment once (the events socket and a reload may both bring it). */
export function withComment(comments: Comment[], comment: Comment): Comment[] {
  return comments.some((c) => c.id === comment.id) ? comments : [...comments, comment].slice(-200);
}
