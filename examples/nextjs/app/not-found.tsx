import Link from "next/link";

export default function NotFound() {
  return (
    <section className="card" data-testid="not-found">
      <h1>Nothing here</h1>
      <p>There is no channel or page at this address. It may have been renamed, or the link has a typo.</p>
      <p>
        <Link href="/">Back to the live channels</Link>
      </p>
    </section>
  );
}
