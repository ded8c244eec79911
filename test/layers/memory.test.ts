import { InMemoryChannelLayer } from '../../src/layers/memory';
import { describeLayerConformance } from './conformance';

describeLayerConformance('InMemoryChannelLayer', {
  create: async (options) => new InMemoryChannelLayer(options),
  shared: false,
});
