import { notFound } from "next/navigation";
import type { StreamInfo } from "@/lib/api";
import { serverApiUrl } from "@/lib/config";
import { Watch } from "./watch";

// /<username>: usernames are URLs (the API reserves the names of this app's
// other pages: login, signup, settings, dashboard, live, ...). Rendered on
// the server first so that an unknown channel answers a real HTTP 404
// (app/not-found.tsx); the page then lives in the browser (./watch.tsx).
// ?stream=ID shows the chat of an earlier stream of the channel.
export const dynamic = "force-dynamic";

async function channel(username: string): Promise<StreamInfo | null> {
  let response: Response;
  try {
    response = await fetch(`${serverApiUrl()}/api/streams/${encodeURIComponent(username)}`, { cache: "no-store" });
  } catch {
    return null; // the API is unreachable from here: the browser tries on its own
  }
  if (response.status === 404) notFound();
  return response.ok ? ((await response.json()) as StreamInfo) : null;
}

export default async function WatchPage({
  params,
  searchParams,
}: {
  params: Promise<{ username: string }>;
  searchParams: Promise<{ stream?: string }>;
}) {
  const { username } = await params;
  const { stream } = await searchParams;
  const name = decodeURIComponent(username);
  const initial = await channel(name);
  const past = stream && /^\d+$/.test(stream) ? Number(stream) : null;
  return <Watch username={name} initial={initial} pastStream={past} />;
}
