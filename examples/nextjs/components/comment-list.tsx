import type { Comment } from "@/lib/api";

/** Oldest first, as a chat reads. */
export function CommentList({ comments, onDelete }: { comments: Comment[]; onDelete?: (id: number) => void }) {
  if (comments.length === 0) return <p className="muted">No comments yet.</p>;
  return (
    <ul className="comments" data-testid="comments">
      {comments.map((c) => (
        <li key={c.id}>
          <b>{c.author}</b> {c.text}
          {onDelete && (
            <button className="link" onClick={() => onDelete(c.id)} aria-label={`Delete comment ${c.id}`}>
              delete
            </button>
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
