/**
 * Running compose.yaml with rootful podman on machines without a container registry: the
 * local Debian base image and the podman settings these machines need.
 *
 * @example
 * ```ts
 * import { ensureBaseImage, podmanEnv } from "./containers/mod.ts";
 * const env = await podmanEnv();
 * const { image } = await ensureBaseImage({ env });
 * ```
 * @module
 */

export {
  BASE_IMAGE,
  BASE_REVISION,
  BaseImageError,
  type BaseImageOptions,
  type BaseImageResult,
  debianSources,
  ensureBaseImage,
  hostDebianMirror,
} from "./base_image.ts";
export {
  type CommandOutput,
  COMPOSE_FILES,
  ComposeError,
  ComposeProject,
  type ComposeProjectOptions,
} from "./compose_project.ts";
export { CONTAINERS_CONF_TEXT, podmanEnv } from "./podman_env.ts";
