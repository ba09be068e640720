import { Watch } from "./watch";

// /<username>: usernames are URLs (the API reserves the names of this app's
// other pages: login, signup, settings, dashboard, live, ...).
export default async function WatchPage({ params }: { params: Promise<{ username: string }> }) {
  const { username } = await params;
  return <Watch username={decodeURIComponent(username)} />;
}
