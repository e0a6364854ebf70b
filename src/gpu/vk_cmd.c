/* Command recording and submission, with timestamp queries. One command buffer
 * per device; every submit waits on a fence (see the header of vkmix.h). */
#include "gpu/vk_device.h"
#include "gpu/pipelines.h"

vkmix_error vkm_cmd_begin(vkm_device *dev)
{
    struct VolkDeviceTable *vk = &dev->vk;
    VkResult r = vk->vkResetCommandBuffer(dev->cmd, 0);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    r = vk->vkBeginCommandBuffer(dev->cmd, &bi);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkBeginCommandBuffer");
    if (dev->timestamps) vk->vkCmdResetQueryPool(dev->cmd, dev->timestamps, 0, VKM_MAX_TIMESTAMPS);
    return VKMIX_OK;
}

void vkm_cmd_dispatch(vkm_device *dev, const vkm_pipeline *p, const vkm_binding *bindings, uint32_t n_bindings,
                      const void *push, uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz)
{
    struct VolkDeviceTable *vk = &dev->vk;
    VkDescriptorBufferInfo info[VKM_MAX_BINDINGS];
    VkWriteDescriptorSet w[VKM_MAX_BINDINGS];
    for (uint32_t i = 0; i < n_bindings && i < VKM_MAX_BINDINGS; i++) {
        info[i] = (VkDescriptorBufferInfo){ bindings[i].buf->buf, bindings[i].offset, bindings[i].size };
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &info[i],
        };
    }
    vk->vkCmdBindPipeline(dev->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    vk->vkCmdPushDescriptorSetKHR(dev->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, n_bindings, w);
    if (push_size) vk->vkCmdPushConstants(dev->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    vk->vkCmdDispatch(dev->cmd, gx, gy, gz);
}

void vkm_cmd_barrier(vkm_device *dev)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                         VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    dev->vk.vkCmdPipelineBarrier(dev->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                                 VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0,
                                 NULL, 0, NULL);
}

void vkm_cmd_copy(vkm_device *dev, const vkm_buffer *src, uint64_t so, const vkm_buffer *dst, uint64_t dof, uint64_t n)
{
    VkBufferCopy c = { so, dof, n };
    dev->vk.vkCmdCopyBuffer(dev->cmd, src->buf, dst->buf, 1, &c);
}

void vkm_cmd_timestamp(vkm_device *dev, uint32_t slot)
{
    if (!dev->timestamps || slot >= VKM_MAX_TIMESTAMPS) return;
    dev->vk.vkCmdWriteTimestamp(dev->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, dev->timestamps, slot);
}

vkmix_error vkm_cmd_submit(vkm_device *dev)
{
    struct VolkDeviceTable *vk = &dev->vk;
    VkResult r = vk->vkEndCommandBuffer(dev->cmd);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkEndCommandBuffer");
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &dev->cmd,
    };
    r = vk->vkQueueSubmit(dev->queue, 1, &si, dev->fence);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkQueueSubmit");
    r = vk->vkWaitForFences(dev->device, 1, &dev->fence, VK_TRUE, UINT64_MAX);
    VkResult r2 = vk->vkResetFences(dev->device, 1, &dev->fence);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkWaitForFences");
    if (r2 != VK_SUCCESS) return vkm_vk_error(dev, r2, "vkResetFences");
    return VKMIX_OK;
}

vkmix_error vkm_timestamp_ns(vkm_device *dev, uint32_t from, uint32_t to, double *ns)
{
    *ns = 0;
    if (!dev->timestamps) return vkm_fail(dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "the queue has no timestamps");
    uint64_t t[2];
    VkResult r = dev->vk.vkGetQueryPoolResults(dev->device, dev->timestamps, from, 1, sizeof t[0], &t[0], sizeof t[0],
                                               VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r == VK_SUCCESS)
        r = dev->vk.vkGetQueryPoolResults(dev->device, dev->timestamps, to, 1, sizeof t[1], &t[1], sizeof t[1],
                                          VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkGetQueryPoolResults");
    uint64_t mask = dev->caps.timestamp_valid_bits >= 64 ? ~0ull : ((1ull << dev->caps.timestamp_valid_bits) - 1);
    uint64_t d = (t[1] - t[0]) & mask;
    *ns = (double)d * dev->caps.timestamp_period_ns;
    return VKMIX_OK;
}
