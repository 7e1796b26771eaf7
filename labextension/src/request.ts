import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * Call the jupyter_tune REST API (`/jupyter-tune/<endPoint>`) and return its JSON reply.
 *
 * A non-2xx reply throws a `ServerConnection.ResponseError` whose message is the server's
 * `{"message": ...}`, so the panel can show it as is.
 */
export async function requestAPI<T>(endPoint = '', init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'jupyter-tune', endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let data: any = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // not JSON (a proxy's error page, say): keep the text
    }
  }
  if (!response.ok) {
    const message =
      typeof data === 'object' && data?.message ? data.message : `${response.status} ${response.statusText}`;
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}
