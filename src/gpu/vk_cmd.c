/* Recording targets (vkm_cmd): command pool, buffer and fence per owner, with
 * timestamp queries on demand. Submission takes the device's queue lock (a
 * VkQueue needs external synchronisation) and then waits on the owner's fence
 * without it, so several owners may run GPU work from several threads. */
#include "gpu/vk_device.h"
#include "gpu/pipelines.h"

#include <string.h>

vkmix_error vkm_cmd_create(vkm_cmd *c, vkm_device *dev, struct vkmix_context *ctx, bool timestamps)
{
    memset(c, 0, sizeof *c);
    c->dev = dev;
    c->ctx = ctx;
    const vkm_vkd *vk = &dev->vk;
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = dev->queue_family,
    };
    VkResult r = vk->vkCreateCommandPool(dev->device, &pci, NULL, &c->pool);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkCreateCommandPool");
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = c->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    r = vk->vkAllocateCommandBuffers(dev->device, &ai, &c->cb);
    if (r != VK_SUCCESS) {
        vkm_cmd_destroy(c);
        return vkm_vk_error(dev, r, "vkAllocateCommandBuffers");
    }
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    r = vk->vkCreateFence(dev->device, &fci, NULL, &c->fence);
    if (r != VK_SUCCESS) {
        vkm_cmd_destroy(c);
        return vkm_vk_error(dev, r, "vkCreateFence");
    }
    if (timestamps && dev->caps.timestamp_period_ns > 0 && dev->caps.timestamp_valid_bits) {
        VkQueryPoolCreateInfo qi = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = VKM_MAX_TIMESTAMPS,
        };
        r = vk->vkCreateQueryPool(dev->device, &qi, NULL, &c->timestamps);
        if (r != VK_SUCCESS) {
            vkm_cmd_destroy(c);
            return vkm_vk_error(dev, r, "vkCreateQueryPool");
        }
    }
    return VKMIX_OK;
}

void vkm_cmd_destroy(vkm_cmd *c)
{
    if (!c || !c->dev || !c->dev->device) return;
    const vkm_vkd *vk = &c->dev->vk;
    VkDevice d = c->dev->device;
    if (c->timestamps) vk->vkDestroyQueryPool(d, c->timestamps, NULL);
    if (c->fence) vk->vkDestroyFence(d, c->fence, NULL);
    if (c->pool) vk->vkDestroyCommandPool(d, c->pool, NULL); /* frees c->cb */
    vkm_buffer_destroy(c->dev, &c->scratch);
    for (uint32_t i = 0; i < c->n_scratch_old; i++) vkm_buffer_destroy(c->dev, &c->scratch_old[i]);
    memset(c, 0, sizeof *c);
}

vkmix_error vkm_cmd_begin(vkm_cmd *c)
{
    const vkm_vkd *vk = &c->dev->vk;
    c->n_dispatch = c->n_barrier = 0;
    VkResult r = vk->vkResetCommandBuffer(c->cb, 0);
    if (r != VK_SUCCESS) return vkm_vk_error(c->dev, r, "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    r = vk->vkBeginCommandBuffer(c->cb, &bi);
    if (r != VK_SUCCESS) return vkm_vk_error(c->dev, r, "vkBeginCommandBuffer");
    if (c->timestamps) vk->vkCmdResetQueryPool(c->cb, c->timestamps, 0, VKM_MAX_TIMESTAMPS);
    return VKMIX_OK;
}

void vkm_cmd_dispatch(vkm_cmd *c, const vkm_pipeline *p, const vkm_binding *bindings, uint32_t n_bindings,
                      const void *push, uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz)
{
    const vkm_vkd *vk = &c->dev->vk;
    c->n_dispatch++;
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
    vk->vkCmdBindPipeline(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    vk->vkCmdPushDescriptorSetKHR(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, n_bindings, w);
    if (push_size) vk->vkCmdPushConstants(c->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    vk->vkCmdDispatch(c->cb, gx, gy, gz);
}

void vkm_cmd_barrier(vkm_cmd *c)
{
    c->n_barrier++;
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                         VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    c->dev->vk.vkCmdPipelineBarrier(c->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                                    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0,
                                    NULL, 0, NULL);
}

void vkm_cmd_copy(vkm_cmd *c, const vkm_buffer *src, uint64_t so, const vkm_buffer *dst, uint64_t dof, uint64_t n)
{
    VkBufferCopy r = { so, dof, n };
    c->dev->vk.vkCmdCopyBuffer(c->cb, src->buf, dst->buf, 1, &r);
}

void vkm_cmd_fill(vkm_cmd *c, const vkm_buffer *dst, uint32_t value)
{
    c->dev->vk.vkCmdFillBuffer(c->cb, dst->buf, 0, VK_WHOLE_SIZE, value);
}

void vkm_cmd_timestamp(vkm_cmd *c, uint32_t slot)
{
    if (!c->timestamps || slot >= VKM_MAX_TIMESTAMPS) return;
    c->dev->vk.vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->timestamps, slot);
}

vkmix_error vkm_cmd_submit(vkm_cmd *c)
{
    vkm_device *dev = c->dev;
    const vkm_vkd *vk = &dev->vk;
    VkResult r = vk->vkEndCommandBuffer(c->cb);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkEndCommandBuffer");
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &c->cb,
    };
    pthread_mutex_lock(&dev->queue_lock);
    r = vk->vkQueueSubmit(dev->queue, 1, &si, c->fence);
    pthread_mutex_unlock(&dev->queue_lock);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkQueueSubmit");
    r = vk->vkWaitForFences(dev->device, 1, &c->fence, VK_TRUE, UINT64_MAX);
    VkResult r2 = vk->vkResetFences(dev->device, 1, &c->fence);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkWaitForFences");
    if (r2 != VK_SUCCESS) return vkm_vk_error(dev, r2, "vkResetFences");
    return VKMIX_OK;
}

vkmix_error vkm_timestamp_ns(vkm_cmd *c, uint32_t from, uint32_t to, double *ns)
{
    vkm_device *dev = c->dev;
    *ns = 0;
    if (!c->timestamps) return vkm_fail(dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "the queue has no timestamps");
    uint64_t t[2];
    VkResult r = dev->vk.vkGetQueryPoolResults(dev->device, c->timestamps, from, 1, sizeof t[0], &t[0], sizeof t[0],
                                               VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r == VK_SUCCESS)
        r = dev->vk.vkGetQueryPoolResults(dev->device, c->timestamps, to, 1, sizeof t[1], &t[1], sizeof t[1],
                                          VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkGetQueryPoolResults");
    uint64_t mask = dev->caps.timestamp_valid_bits >= 64 ? ~0ull : ((1ull << dev->caps.timestamp_valid_bits) - 1);
    uint64_t d = (t[1] - t[0]) & mask;
    *ns = (double)d * dev->caps.timestamp_period_ns;
    return VKMIX_OK;
}
