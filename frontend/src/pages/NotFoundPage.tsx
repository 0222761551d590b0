import { Link } from "react-router";
import { useTitle } from "../components/useTitle";

export function NotFoundPage() {
  useTitle("Not found");
  return (
    <section className="page">
      <h1>Page not found</h1>
      <p>
        <Link to="/">Back to projects</Link>
      </p>
    </section>
  );
}
